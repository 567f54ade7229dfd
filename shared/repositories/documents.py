"""Document metadata: record a received document, read it, and move it received -> processed."""

from __future__ import annotations

from shared.db.connection import Cursor, Database
from shared.errors import NotFound
from shared.repositories._values import from_row, params
from shared.schemas.documents import DocumentRecord

COLUMNS = ("id", "patient_id", "content_type", "size_bytes", "sha256", "blob_name", "status", "created_at")
_SELECT = (
    "SELECT id, patient_id, content_type, size_bytes, sha256, blob_name, status, created_at FROM documents"
)
_INSERT = (
    "INSERT INTO documents (id, patient_id, content_type, size_bytes, sha256, blob_name, status, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class DocumentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, record: DocumentRecord) -> DocumentRecord:
        """Record a received document. Re-adding the same record (a retried message) is a no-op."""
        if record.status != "received":
            raise ValueError("documents are recorded as received")
        d = self._db.dialect

        def work(cursor: Cursor) -> DocumentRecord:
            existing = _read(cursor, record.id)
            if existing is not None:
                if existing.model_dump(exclude={"status"}) != record.model_dump(exclude={"status"}):
                    raise ValueError("a different document already has this id")
                return existing
            cursor.execute(_INSERT, params([getattr(record, c) for c in COLUMNS], d))
            return record

        return self._db.run(work)

    def get(self, patient_id: str, document_id: str) -> DocumentRecord:
        record = self._db.run(lambda cursor: _read(cursor, document_id))
        if record is None or record.patient_id != patient_id:
            raise NotFound()  # another patient's document is indistinguishable from a missing one
        return record

    def find(self, document_id: str) -> DocumentRecord | None:
        return self._db.run(lambda cursor: _read(cursor, document_id))

    def mark_processed(self, document_id: str) -> bool:
        """received -> processed. True if this call made the transition; False if already processed."""

        def work(cursor: Cursor) -> bool:
            cursor.execute(
                "UPDATE documents SET status = 'processed' WHERE id = ? AND status = 'received'",
                (document_id,),
            )
            if cursor.rowcount == 1:
                return True
            if _read(cursor, document_id) is None:
                raise NotFound()
            return False

        return self._db.run(work)

    def delete(self, document_id: str) -> bool:
        """Remove a record (undo of a failed upload). False when it was already gone."""

        def work(cursor: Cursor) -> bool:
            cursor.execute("DELETE FROM documents WHERE id = ?", (document_id,))
            return bool(cursor.rowcount == 1)

        return self._db.run(work)

    def list_for_patient(self, patient_id: str) -> list[DocumentRecord]:
        def work(cursor: Cursor) -> list[DocumentRecord]:
            cursor.execute(_SELECT + " WHERE patient_id = ? ORDER BY created_at, id", (patient_id,))
            return [DocumentRecord.model_validate(from_row(COLUMNS, r)) for r in cursor.fetchall()]

        return self._db.run(work)


def _read(cursor: Cursor, document_id: str) -> DocumentRecord | None:
    cursor.execute(_SELECT + " WHERE id = ?", (document_id,))
    row = cursor.fetchone()
    return None if row is None else DocumentRecord.model_validate(from_row(COLUMNS, row))
