"""Parameter and row conversion between models and the two dialects.

SQLite stores timestamps as fixed-width ISO-8601 UTC text (so string order is time order); Azure SQL
receives native `datetime2` values in UTC. Lists travel as JSON text on both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from shared.db.connection import Dialect

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def param(value: Any, dialect: Dialect) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        value = utc(value)
        return value.strftime(_TS_FORMAT) if dialect == "sqlite" else value.replace(tzinfo=None)
    if isinstance(value, date):
        return value.isoformat() if dialect == "sqlite" else value
    if isinstance(value, list | tuple):
        return json.dumps(list(value), separators=(",", ":"))
    return value


def params(values: Sequence[Any], dialect: Dialect) -> tuple[Any, ...]:
    return tuple(param(v, dialect) for v in values)


def from_row(
    columns: Sequence[str], row: Sequence[Any], json_columns: frozenset[str] = frozenset()
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        if name in json_columns and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = utc(value)
        out[name] = value
    return out
