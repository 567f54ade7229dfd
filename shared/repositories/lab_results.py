"""Lab results: idempotent upsert on (lab_order_id, version).

One row per lab order, holding its highest version. A redelivered message (same order and version)
changes nothing; a higher version replaces the row; a lower, late version is ignored. Written without
MERGE / ON CONFLICT so the same SQL runs on SQLite and Azure SQL: a guarded UPDATE, then a guarded
INSERT, in one transaction; the primary key catches a concurrent first insert, which is then retried.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from shared.db.connection import Cursor, Database
from shared.repositories._values import from_row, params
from shared.schemas.lab_results import LabResultRecord

COLUMNS = ("lab_order_id", "version", "patient_id", "code", "value", "unit", "effective_at", "received_at")
_SELECT = (
    "SELECT lab_order_id, version, patient_id, code, value, unit, effective_at, received_at FROM lab_results"
)
_UPDATE = (
    "UPDATE lab_results SET version = ?, patient_id = ?, code = ?, value = ?, unit = ?, effective_at = ?, "
    "received_at = ? WHERE lab_order_id = ? AND version < ?"
)
_INSERT = (
    "INSERT INTO lab_results "
    "(lab_order_id, version, patient_id, code, value, unit, effective_at, received_at) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM lab_results WHERE lab_order_id = ?)"
)


class Upsert(StrEnum):
    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # same version again, or an older one


def _now() -> datetime:
    return datetime.now(UTC)


class LabResultRepository:
    def __init__(self, db: Database, clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._clock = clock

    def upsert(
        self,
        *,
        lab_order_id: str,
        version: int,
        patient_id: str,
        code: str,
        value: str,
        unit: str,
        effective_at: datetime,
    ) -> Upsert:
        record = LabResultRecord(
            lab_order_id=lab_order_id,
            version=version,
            patient_id=patient_id,
            code=code,
            value=value,
            unit=unit,
            effective_at=effective_at,
            received_at=self._clock(),
        )
        d = self._db.dialect
        row = params([getattr(record, c) for c in COLUMNS], d)

        def work(cursor: Cursor) -> Upsert:
            cursor.execute(_UPDATE, (*row[1:], record.lab_order_id, record.version))
            if cursor.rowcount == 1:
                return Upsert.UPDATED
            cursor.execute(_INSERT, (*row, record.lab_order_id))
            return Upsert.INSERTED if cursor.rowcount == 1 else Upsert.UNCHANGED

        return self._db.run(work)

    def get(self, lab_order_id: str) -> LabResultRecord | None:
        def work(cursor: Cursor) -> LabResultRecord | None:
            cursor.execute(_SELECT + " WHERE lab_order_id = ?", (lab_order_id,))
            r = cursor.fetchone()
            return None if r is None else LabResultRecord.model_validate(from_row(COLUMNS, r))

        return self._db.run(work)

    def list_for_patient(self, patient_id: str) -> list[LabResultRecord]:
        def work(cursor: Cursor) -> list[LabResultRecord]:
            cursor.execute(
                _SELECT + " WHERE patient_id = ? ORDER BY effective_at, lab_order_id", (patient_id,)
            )
            return [LabResultRecord.model_validate(from_row(COLUMNS, r)) for r in cursor.fetchall()]

        return self._db.run(work)
