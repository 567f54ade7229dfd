"""Patients: create, read, update, and the retention queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.db.connection import Cursor, Database
from shared.errors import Conflict, NotFound
from shared.repositories._values import from_row, param, params
from shared.schemas.patients import PatientCreate, PatientRecord, PatientUpdate

COLUMNS = (
    "id", "mrn", "given_name", "family_name", "birth_date", "sex", "phone", "email", "address_line", "city",
    "state", "postal_code", "insurance_payer", "insurance_member_id", "admission_date", "discharge_date",
    "allergies", "problems", "note", "legal_hold", "created_at", "updated_at",
)  # fmt: skip
_JSON = frozenset({"allergies", "problems"})

_SELECT = (
    "SELECT id, mrn, given_name, family_name, birth_date, sex, phone, email, address_line, city, state, "
    "postal_code, insurance_payer, insurance_member_id, admission_date, discharge_date, allergies, problems, "
    "note, legal_hold, created_at, updated_at FROM patients"
)
_INSERT = (
    "INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, phone, email, address_line, "
    "city, state, postal_code, insurance_payer, insurance_member_id, admission_date, discharge_date, "
    "allergies, problems, note, legal_hold, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE patients SET given_name = ?, family_name = ?, birth_date = ?, sex = ?, phone = ?, email = ?, "
    "address_line = ?, city = ?, state = ?, postal_code = ?, insurance_payer = ?, insurance_member_id = ?, "
    "admission_date = ?, discharge_date = ?, allergies = ?, problems = ?, note = ?, updated_at = ? "
    "WHERE id = ? AND updated_at = ?"
)
_EXPIRED = {
    "sqlite": (
        "SELECT id FROM patients WHERE legal_hold = 0 AND updated_at < ? ORDER BY updated_at, id LIMIT ?"
    ),
    "mssql": (
        "SELECT TOP (?) id FROM patients WHERE legal_hold = 0 AND updated_at < ? ORDER BY updated_at, id"
    ),
}


@dataclass(frozen=True)
class Purged:
    patient_id: str
    blob_names: tuple[str, ...]
    documents: int
    lab_results: int


def _now() -> datetime:
    return datetime.now(UTC)


def _purge_one(cursor: Cursor, patient_id: str, cutoff: object) -> Purged | None:
    cursor.execute(
        "SELECT id FROM patients WHERE id = ? AND legal_hold = 0 AND updated_at < ?",
        (patient_id, cutoff),
    )
    if cursor.fetchone() is None:
        return None  # gone, on hold, or touched since it was selected
    cursor.execute("SELECT blob_name FROM documents WHERE patient_id = ?", (patient_id,))
    blobs = tuple(str(r[0]) for r in cursor.fetchall())
    cursor.execute("DELETE FROM lab_results WHERE patient_id = ?", (patient_id,))
    labs = cursor.rowcount
    cursor.execute("DELETE FROM documents WHERE patient_id = ?", (patient_id,))
    docs = cursor.rowcount
    cursor.execute("DELETE FROM patients WHERE id = ? AND legal_hold = 0", (patient_id,))
    if cursor.rowcount != 1:
        raise Conflict("retention_race")  # rolls the whole unit back
    return Purged(patient_id, blobs, docs, labs)


class PatientRepository:
    def __init__(self, db: Database, clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._clock = clock

    def _read(self, cursor: Cursor, patient_id: str) -> PatientRecord | None:
        cursor.execute(_SELECT + " WHERE id = ?", (patient_id,))
        row = cursor.fetchone()
        return None if row is None else PatientRecord.model_validate(from_row(COLUMNS, row, _JSON))

    def create(
        self, data: PatientCreate, *, before_commit: Callable[[PatientRecord], None] | None = None
    ) -> PatientRecord:
        """Insert a patient. `before_commit` runs inside the transaction after the insert (the audit
        record): if it raises, nothing is committed, so a create that cannot be audited leaves no row.
        A transient retry may run it again; audit is at-least-once, never missing."""
        now = self._clock()
        record = PatientRecord(id=str(uuid.uuid4()), **data.model_dump(), created_at=now, updated_at=now)
        d = self._db.dialect

        def work(cursor: Cursor) -> None:
            cursor.execute("SELECT 1 FROM patients WHERE mrn = ?", (record.mrn,))
            if cursor.fetchone() is not None:
                raise Conflict("mrn_exists")
            cursor.execute(_INSERT, params([getattr(record, c) for c in COLUMNS], d))
            if before_commit is not None:
                before_commit(record)

        self._db.run(work)
        return record

    def get(self, patient_id: str) -> PatientRecord:
        record = self._db.run(lambda cursor: self._read(cursor, patient_id))
        if record is None:
            raise NotFound()
        return record

    def find_by_mrn(self, mrn: str) -> PatientRecord | None:
        def work(cursor: Cursor) -> PatientRecord | None:
            cursor.execute(_SELECT + " WHERE mrn = ?", (mrn,))
            row = cursor.fetchone()
            return None if row is None else PatientRecord.model_validate(from_row(COLUMNS, row, _JSON))

        return self._db.run(work)

    def update(self, patient_id: str, changes: PatientUpdate) -> PatientRecord:
        """Apply the fields present in `changes` (optimistic: the row must not change underneath)."""
        d = self._db.dialect

        def work(cursor: Cursor) -> PatientRecord:
            current = self._read(cursor, patient_id)
            if current is None:
                raise NotFound()
            updated = current.model_copy(
                update={
                    **changes.model_dump(exclude_unset=True),
                    "updated_at": max(self._clock(), current.updated_at),
                }
            )
            updated = PatientRecord.model_validate(updated.model_dump())
            values = [getattr(updated, c) for c in COLUMNS[2:19]] + [
                updated.updated_at,
                patient_id,
                current.updated_at,
            ]
            cursor.execute(_UPDATE, params(values, d))
            if cursor.rowcount != 1:
                raise Conflict("concurrent_update")
            return updated

        return self._db.run(work)

    def set_legal_hold(self, patient_id: str, hold: bool) -> None:
        def work(cursor: Cursor) -> None:
            cursor.execute("UPDATE patients SET legal_hold = ? WHERE id = ?", (int(hold), patient_id))
            if cursor.rowcount != 1:
                raise NotFound()

        self._db.run(work)

    def expired(self, older_than_days: int, limit: int) -> list[str]:
        """Ids of patients untouched for more than `older_than_days`, not on legal hold; at most `limit`."""
        cutoff = param(self._clock() - timedelta(days=older_than_days), self._db.dialect)
        d = self._db.dialect
        args = (cutoff, limit) if d == "sqlite" else (limit, cutoff)

        def work(cursor: Cursor) -> list[str]:
            cursor.execute(_EXPIRED[d], args)
            return [str(row[0]) for row in cursor.fetchall()]

        return self._db.run(work)

    def purge(self, patient_id: str, older_than_days: int) -> Purged | None:
        """Delete a patient and everything hanging off it in one transaction, re-checking the hold and age.

        Returns the blob names to delete from storage afterwards, or None when the patient is gone, on
        hold, or was touched since it was selected.
        """
        purged = self.purge_batch([patient_id], older_than_days)
        return purged[0] if purged else None

    def purge_batch(
        self,
        patient_ids: Sequence[str],
        older_than_days: int,
        *,
        before_commit: Callable[[list[Purged]], None] | None = None,
    ) -> list[Purged]:
        """`purge` for a bounded batch, in ONE transaction. `before_commit` (the retention audit) sees
        what is about to be deleted; if it raises, nothing is deleted, so no deletion goes unaudited."""
        cutoff = param(self._clock() - timedelta(days=older_than_days), self._db.dialect)

        def work(cursor: Cursor) -> list[Purged]:
            done = [p for p in (_purge_one(cursor, pid, cutoff) for pid in patient_ids) if p is not None]
            if before_commit is not None:
                before_commit(done)
            return done

        return self._db.run(work)
