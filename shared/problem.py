"""RFC 9457 `application/problem+json` responses built from the one error model in `shared.errors`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import azure.functions as func

from shared.errors import AppError

PROBLEM_JSON = "application/problem+json"
_BASE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def problem_response(error: AppError, correlation_id: str) -> func.HttpResponse:
    body: dict[str, object] = {
        "type": f"urn:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "correlationId": correlation_id,
    }
    if error.errors:
        body["errors"] = list(error.errors)
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=error.status,
        headers={**_BASE_HEADERS, **error.headers},
        mimetype=PROBLEM_JSON,
    )


def internal_error_response(correlation_id: str) -> func.HttpResponse:
    """An unexpected failure: a 500 with a correlation id and nothing else."""
    return problem_response(AppError(), correlation_id)


def json_response(
    payload: object, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload, separators=(",", ":"), default=str),
        status_code=status_code,
        headers={**_BASE_HEADERS, **(headers or {})},
        mimetype="application/json",
    )
