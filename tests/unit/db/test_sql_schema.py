"""The Azure SQL schema files agree with the models and with the portable schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.db.schema import SQLITE_SCHEMA
from shared.schemas.documents import DocumentRecord
from shared.schemas.lab_results import LabResultRecord
from shared.schemas.patients import PatientRecord

SQL = Path(__file__).resolve().parents[3] / "sql"
TABLES: dict[str, type[BaseModel]] = {
    "patients": PatientRecord,
    "documents": DocumentRecord,
    "lab_results": LabResultRecord,
}
_SKIP = {"CONSTRAINT", "PRIMARY", "FOREIGN", "UNIQUE", "CHECK"}


def _columns(ddl: str, table: str) -> dict[str, str]:
    match = re.search(rf"CREATE TABLE (?:IF NOT EXISTS )?(?:dbo\.)?{table} \((.*?)\n\s*\)", ddl, re.S)
    assert match, table
    lines = [raw for raw in match.group(1).splitlines() if raw.split("--")[0].strip()]
    base = len(lines[0]) - len(lines[0].lstrip())
    columns: dict[str, str] = {}
    current = None
    for raw in lines:
        line = raw.split("--")[0].strip()
        indent = len(raw) - len(raw.lstrip())
        if indent == base and line.split()[0].upper() not in _SKIP:
            for part in re.split(r",(?![^(]*\))", line.rstrip(",")):
                if part.strip():
                    name = part.split()[0]
                    columns[name] = part.strip()
                    current = name
        elif current is not None:
            columns[current] += " " + line
    return columns


@pytest.mark.parametrize("path", ["schema.sql", "schema.always-encrypted.sql"])
@pytest.mark.parametrize(("table", "model"), TABLES.items())
def test_sql_columns_match_the_stored_model(path: str, table: str, model: type[BaseModel]) -> None:
    assert list(_columns((SQL / path).read_text(), table)) == list(model.model_fields)


@pytest.mark.parametrize(("table", "model"), TABLES.items())
def test_portable_schema_matches_the_stored_model(table: str, model: type[BaseModel]) -> None:
    assert list(_columns("\n".join(SQLITE_SCHEMA), table)) == list(model.model_fields)


def test_always_encrypted_is_deterministic_only_for_the_mrn_and_strings_are_nvarchar() -> None:
    ddl = (SQL / "schema.always-encrypted.sql").read_text()
    deterministic, encrypted = [], []
    for table in TABLES:
        for name, definition in _columns(ddl, table).items():
            if "ENCRYPTED WITH" in definition:
                encrypted.append(name)
                col_type = definition.split()[1].lower()
                assert col_type.startswith(("nvarchar", "date")), (name, col_type)
                if "nvarchar" in col_type:
                    assert "_BIN2" in definition, name
                if "DETERMINISTIC" in definition:
                    deterministic.append(name)
    assert deterministic == ["mrn"]
    assert {"given_name", "family_name", "birth_date", "phone", "email", "note", "value"} <= set(encrypted)


def test_bootstrap_creates_an_entra_user_with_table_grants_only() -> None:
    sql = "\n".join(line.split("--")[0] for line in (SQL / "bootstrap-app-user.sql").read_text().splitlines())
    assert "FROM EXTERNAL PROVIDER" in sql
    lowered = sql.lower()
    for forbidden in ("db_owner", "password", "alter role", "grant control", "db_ddladmin"):
        assert forbidden not in lowered
    assert re.findall(r"GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::dbo\.(\w+)", sql) == list(TABLES)
