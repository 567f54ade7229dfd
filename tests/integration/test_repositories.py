"""Repositories on stdlib sqlite3 AND on pyodbc with the real SQLite ODBC driver (`database` fixture)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.db.connection import Database
from shared.errors import Conflict, NotFound
from shared.repositories.documents import DocumentRepository
from shared.repositories.lab_results import LabResultRepository, Upsert
from shared.repositories.patients import PatientRepository
from shared.schemas.documents import DocumentRecord
from shared.schemas.patients import PatientUpdate
from tests.fixtures.data import FIXED_NOW, patient_create

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _doc(patient_id: str, **overrides: object) -> DocumentRecord:
    data: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "patient_id": patient_id,
        "content_type": "application/pdf",
        "size_bytes": 1234,
        "sha256": "ab" * 32,
        "blob_name": str(uuid.uuid4()),
        "status": "received",
        "created_at": FIXED_NOW,
    }
    data.update(overrides)
    return DocumentRecord.model_validate(data)


def test_driver_under_test_is_what_it_claims(database: Database) -> None:
    raw = database._connect()  # the raw DB-API connection
    try:
        assert type(raw).__module__ in ("sqlite3", "pyodbc")
    finally:
        raw.close()


def test_patient_round_trip(database: Database) -> None:
    repo = PatientRepository(database, Clock())
    created = repo.create(patient_create())
    loaded = repo.get(created.id)
    assert loaded == created
    assert loaded.allergies == ("227493005",) and loaded.created_at == FIXED_NOW
    assert repo.find_by_mrn(created.mrn) == created
    assert repo.find_by_mrn("NOPE000000") is None


def test_duplicate_mrn_is_a_conflict_and_nothing_is_written(database: Database) -> None:
    repo = PatientRepository(database, Clock())
    first = repo.create(patient_create())
    with pytest.raises(Conflict):
        repo.create(patient_create(mrn=first.mrn, given_name="Other"))
    assert repo.get(first.id).given_name == "Avery"


def test_missing_patient_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound):
        PatientRepository(database).get(str(uuid.uuid4()))


def test_partial_update(database: Database) -> None:
    clock = Clock()
    repo = PatientRepository(database, clock)
    created = repo.create(patient_create())
    clock.now = FIXED_NOW + timedelta(hours=1)
    updated = repo.update(created.id, PatientUpdate(phone="+15555550199", note=None))
    assert updated.phone == "+15555550199" and updated.note is None
    assert updated.given_name == created.given_name and updated.updated_at == clock.now
    assert repo.get(created.id) == updated


def test_parameters_are_bound_not_interpolated(database: Database) -> None:
    repo = PatientRepository(database, Clock())
    hostile = "O'Brien'); DROP TABLE patients;--"
    created = repo.create(patient_create(family_name=hostile))
    assert repo.get(created.id).family_name == hostile


def test_a_failure_mid_transaction_rolls_everything_back(database: Database) -> None:
    repo = PatientRepository(database, Clock())
    created = repo.create(patient_create())

    def half(cursor: object) -> None:
        cursor.execute("UPDATE patients SET given_name = ? WHERE id = ?", ("Changed", created.id))  # type: ignore[attr-defined]
        raise RuntimeError("boom after the first write")

    with pytest.raises(RuntimeError):
        database.run(half)
    assert repo.get(created.id).given_name == "Avery"


def test_document_status_transitions_idempotently(database: Database) -> None:
    patient = PatientRepository(database, Clock()).create(patient_create())
    docs = DocumentRepository(database)
    doc = docs.add(_doc(patient.id))
    assert docs.add(doc) == doc  # a retried intake message
    assert docs.get(patient.id, doc.id).status == "received"
    assert docs.mark_processed(doc.id) is True
    assert docs.mark_processed(doc.id) is False
    assert docs.get(patient.id, doc.id).status == "processed"
    with pytest.raises(NotFound):
        docs.mark_processed(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        docs.get(str(uuid.uuid4()), doc.id)  # another patient's document looks missing
    assert [d.id for d in docs.list_for_patient(patient.id)] == [doc.id]


def test_lab_results_upsert_on_order_and_version(database: Database) -> None:
    patient = PatientRepository(database, Clock()).create(patient_create())
    labs = LabResultRepository(database, Clock())
    base = {
        "lab_order_id": "ORD-1001",
        "patient_id": patient.id,
        "code": "2345-7",
        "unit": "mg/dL",
        "effective_at": datetime(2024, 3, 5, 9, 30, tzinfo=UTC),
    }
    assert labs.upsert(version=1, value="98", **base) is Upsert.INSERTED
    assert labs.upsert(version=1, value="98", **base) is Upsert.UNCHANGED  # redelivery
    assert labs.upsert(version=2, value="101", **base) is Upsert.UPDATED  # correction
    assert labs.upsert(version=1, value="98", **base) is Upsert.UNCHANGED  # late, stale
    stored = labs.get("ORD-1001")
    assert stored is not None and (stored.version, stored.value) == (2, "101")
    assert stored.effective_at == base["effective_at"]
    assert len(labs.list_for_patient(patient.id)) == 1


def test_retention_selects_old_unheld_patients_in_bounded_batches(database: Database) -> None:
    clock = Clock(FIXED_NOW - timedelta(days=400))
    repo = PatientRepository(database, clock)
    old = [repo.create(patient_create()) for _ in range(5)]
    held = repo.create(patient_create())
    repo.set_legal_hold(held.id, True)
    clock.now = FIXED_NOW
    recent = repo.create(patient_create())

    first = repo.expired(older_than_days=365, limit=3)
    assert len(first) == 3
    everything = repo.expired(older_than_days=365, limit=100)
    assert set(everything) == {p.id for p in old}
    assert held.id not in everything and recent.id not in everything
    assert repo.expired(older_than_days=500, limit=100) == []


def test_purge_removes_patient_documents_and_labs_together(database: Database) -> None:
    clock = Clock(FIXED_NOW - timedelta(days=400))
    repo = PatientRepository(database, clock)
    patient = repo.create(patient_create())
    doc = DocumentRepository(database).add(_doc(patient.id))
    LabResultRepository(database, clock).upsert(
        lab_order_id="ORD-7", version=1, patient_id=patient.id, code="2345-7", value="1", unit="mg/dL",
        effective_at=FIXED_NOW,
    )  # fmt: skip
    clock.now = FIXED_NOW
    purged = repo.purge(patient.id, older_than_days=365)
    assert purged is not None
    assert purged.blob_names == (doc.blob_name,) and purged.documents == 1 and purged.lab_results == 1
    with pytest.raises(NotFound):
        repo.get(patient.id)
    assert repo.purge(patient.id, older_than_days=365) is None  # idempotent


def test_purge_respects_a_hold_placed_after_selection(database: Database) -> None:
    clock = Clock(FIXED_NOW - timedelta(days=400))
    repo = PatientRepository(database, clock)
    patient = repo.create(patient_create())
    clock.now = FIXED_NOW
    assert repo.expired(365, 10) == [patient.id]
    repo.set_legal_hold(patient.id, True)
    assert repo.purge(patient.id, older_than_days=365) is None
    assert repo.get(patient.id).legal_hold is True


def test_embedded_memory_database_is_shared_across_units_of_work() -> None:
    from shared.db.connection import sqlite_database
    from shared.db.schema import create_schema

    db = sqlite_database(":memory:")
    create_schema(db)
    created = PatientRepository(db).create(patient_create())
    assert PatientRepository(db).get(created.id).id == created.id
    db.close()
    assert sqlite3.sqlite_version
