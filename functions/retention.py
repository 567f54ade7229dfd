"""Timer trigger `retention-sweep` (daily, 02:30 UTC): delete PHI past `PHI_RETENTION_DAYS`.

A patient whose record has not changed for longer than the retention period, and is not on legal
hold, is deleted with everything hanging off it (documents, lab results). Each batch is one
transaction that re-checks hold and age and writes the batch's audit counts before it commits: a
deletion that cannot be audited does not happen. Then the document blobs are deleted.

Bounded: at most `MAX_BATCHES` batches of `RETENTION_BATCH_SIZE` per run, so a backlog drains over
several nights instead of one run hitting the function timeout. Idempotent: a second run finds
nothing; a blob already gone counts as deleted. Audited as counts only (patients, documents, lab
results: three records per batch, or three zero counts when nothing expired), never ids.

A blob whose delete fails after its row was purged is logged (count only) and left: its name is a
random UUID no record points to any more; storage lifecycle management on the PHI container is the
backstop (docs/workload.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import azure.functions as func

from shared.audit import AuditAction, audit_trail
from shared.config import get_settings
from shared.data import get_document_store, get_repositories
from shared.repositories.patients import Purged
from shared.trigger_route import TriggerContext, run_trigger

bp = func.Blueprint()
logger = logging.getLogger(__name__)

SCHEDULE = "0 30 2 * * *"
MAX_BATCHES = 20


@dataclass(frozen=True)
class SweepCounts:
    patients: int = 0
    documents: int = 0
    lab_results: int = 0
    blobs_not_deleted: int = 0


def sweep(ctx: TriggerContext) -> SweepCounts:
    settings = get_settings().data
    repos, store, trail = get_repositories(), get_document_store(), audit_trail()
    patients = documents = labs = failed_blobs = 0

    def audit_batch(batch: list[Purged]) -> None:
        # Inside the batch's transaction: if the counts cannot be audited, nothing is deleted.
        for entity_type, count in (
            ("patient", len(batch)),
            ("document", sum(p.documents for p in batch)),
            ("lab_result", sum(p.lab_results for p in batch)),
        ):
            trail.record_batch(AuditAction.DELETE, entity_type, count, ctx)

    for batch_number in range(MAX_BATCHES):
        ids = repos.patients.expired(settings.retention_days, settings.retention_batch_size)
        if not ids:
            if batch_number == 0:
                audit_batch([])  # evidence that the sweep ran and found nothing to delete
            break
        batch = repos.patients.purge_batch(ids, settings.retention_days, before_commit=audit_batch)
        for purged in batch:
            patients, documents, labs = patients + 1, documents + purged.documents, labs + purged.lab_results
            for blob_name in purged.blob_names:
                try:
                    store.delete(blob_name)
                except Exception:  # noqa: BLE001 - the row is gone: one refused blob must not orphan the rest
                    failed_blobs += 1
        if len(ids) < settings.retention_batch_size:
            break
    if failed_blobs:
        logger.error("Retention sweep could not delete %d document blobs", failed_blobs)
    return SweepCounts(patients, documents, labs, failed_blobs)


@bp.function_name("retention_sweep")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def retention_sweep(timer: func.TimerRequest, context: func.Context) -> None:
    run_trigger(context, "timer", sweep)
