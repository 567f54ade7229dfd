"""`retention-sweep` through the registered timer function (Azurite, SQLite): fail-closed audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared.audit import AuditAction, AuditEvent, audit_trail
from shared.data import get_database
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
