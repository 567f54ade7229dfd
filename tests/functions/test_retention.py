"""`retention-sweep` through the registered timer function (Azurite, SQLite): fail-closed audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError

from shared.audit import AuditAction, AuditEvent, audit_trail
from shared.data import get_database, get_document_store, get_repositories
from shared.errors import DependencyUnavailable
from tests.fixtures.workload import Clinical


def _expire(patient_id: str) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=4000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    get_database().run(
        lambda cur: cur.execute("UPDATE patients SET updated_at = ? WHERE id = ?", (stamp, patient_id))
    )


def _patient_ids() -> set[str]:
    return {
        r[0] for r in get_database().run(lambda c: (c.execute("SELECT id FROM patients"), c.fetchall())[1])
    }


def test_a_deletion_that_cannot_be_audited_does_not_happen(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient_id = clinical.create_patient()
    _expire(patient_id)

    class BrokenSink:
        def write(self, event: AuditEvent) -> None:
            raise OSError("archive down")

    monkeypatch.setattr(audit_trail(), "sinks", (BrokenSink(),))
    with pytest.raises(DependencyUnavailable):
        clinical.driver.timer("retention_sweep")  # raised for the host's retry, nothing deleted
    assert patient_id in _patient_ids()


def test_each_batch_is_audited_as_counts_and_the_totals_add_up(
    clinical: Clinical, app_env: Callable[..., None], audit_events: list[AuditEvent]
) -> None:
    app_env(RETENTION_BATCH_SIZE="2")
    expired = [clinical.create_patient() for _ in range(3)]
    for patient_id in expired:
        _expire(patient_id)
    kept = clinical.create_patient()
    audit_events.clear()

    clinical.driver.timer("retention_sweep")

    deletes = [e for e in audit_events if e.action is AuditAction.DELETE and e.entity is not None]
    patient_counts = [e.entity.count for e in deletes if e.entity and e.entity.type == "patient"]
    assert patient_counts == [2, 1]  # two batches of at most RETENTION_BATCH_SIZE
    assert all(e.entity is not None and e.entity.pseudonym is None for e in deletes)
    assert _patient_ids() == {kept}


def test_a_blob_delete_refused_by_storage_does_not_abort_the_sweep(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-transient refusal (403 from RBAC, 409 from an immutability policy) comes out of the SDK
    as a plain HttpResponseError. The rows are already purged when blobs are deleted, so aborting
    there would orphan every later blob of the batch with no record pointing at it. Fault injected
    at the SDK boundary of the real Azurite container client."""
    first, second = clinical.create_patient(), clinical.create_patient()
    for patient_id in (first, second):
        assert clinical.upload(patient_id).status_code == 202
        _expire(patient_id)
    blobs = [d.blob_name for p in (first, second) for d in get_repositories().documents.list_for_patient(p)]
    container = get_document_store()._container
    real_delete = container.delete_blob
    refused: list[str] = []

    def delete_blob(name: str, **kwargs: object) -> None:
        if not refused:
            refused.append(name)
            error = HttpResponseError("This request is not authorized")
            error.status_code = 403
            raise error
        real_delete(name, **kwargs)

    monkeypatch.setattr(container, "delete_blob", delete_blob)
    assert {b.name for b in container.list_blobs()} == set(blobs) and len(blobs) == 2
    clinical.driver.timer("retention_sweep")  # completes: the refusal is counted, not raised

    assert _patient_ids().isdisjoint({first, second})
    assert len(refused) == 1
    # Only the refused blob is left; the one after it in the batch was still deleted.
    assert {b.name for b in container.list_blobs()} == set(refused)
