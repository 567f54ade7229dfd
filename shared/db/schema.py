"""The portable schema subset (SQLite, embedded locally and in tests). Azure SQL: ../../sql/schema.sql.

Types are kept to what both engines share through the repositories: text, integers, ISO-8601 UTC
timestamps as fixed-width text (so `<` compares them correctly), JSON arrays as text.
"""

from __future__ import annotations

from shared.db.connection import Cursor, Database

SQLITE_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS patients (
        id TEXT PRIMARY KEY,
        mrn TEXT NOT NULL UNIQUE,
        given_name TEXT NOT NULL,
        family_name TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        sex TEXT NOT NULL,
        phone TEXT, email TEXT, address_line TEXT, city TEXT, state TEXT, postal_code TEXT,
        insurance_payer TEXT, insurance_member_id TEXT,
        admission_date TEXT, discharge_date TEXT,
        allergies TEXT NOT NULL, problems TEXT NOT NULL, note TEXT,
        legal_hold INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ix_patients_retention ON patients (legal_hold, updated_at)",
    """
    CREATE TABLE IF NOT EXISTS documents (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients (id),
        content_type TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        blob_name TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('received', 'processed')),
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ix_documents_patient ON documents (patient_id)",
    """
    CREATE TABLE IF NOT EXISTS lab_results (
        lab_order_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        patient_id TEXT NOT NULL REFERENCES patients (id),
        code TEXT NOT NULL,
        value TEXT NOT NULL,
        unit TEXT NOT NULL,
        effective_at TEXT NOT NULL,
        received_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ix_lab_results_patient ON lab_results (patient_id)",
)


def create_schema(db: Database) -> None:
    """Create the portable schema (idempotent). Azure SQL is migrated from sql/, never from here."""
    if db.dialect != "sqlite":
        raise RuntimeError("Azure SQL schema is applied from sql/schema.sql by the deployment")

    def work(cursor: Cursor) -> None:
        for statement in SQLITE_SCHEMA:
            cursor.execute(statement)

    db.run(work)
