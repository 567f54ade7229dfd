"""Inbound bodies -> models, with errors that carry field paths and error codes only.

Pydantic's errors include the rejected `input` and a `msg` that may quote it; either could be PHI.
Neither ever leaves this module: the 400 says *where* and *what kind*, never *what*.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed

MAX_ERRORS = 50
_JSON_ERRORS = {"json_invalid", "json_type"}


def error_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "$"


def validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = []
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden" and loc:
            # An unknown key is caller-chosen text (it could be a name): report where, not what.
            loc = (*loc[:-1], "*")
        errors.append({"path": error_path(loc), "code": e["type"]})
    return ValidationFailed(errors=errors[:MAX_ERRORS])


def parse_body[M: BaseModel](model: type[M], body: bytes, max_bytes: int) -> M:
    """Parse a JSON request body into `model` (strict), or raise a 4xx `AppError` with no input in it."""
    if len(body) > max_bytes:
        raise PayloadTooLarge()
    failure: ValidationFailed | BadRequest | None = None
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        # Build the replacement here but raise it outside the handler, so the original (which holds
        # the input) is not attached as __context__ to anything that might be logged with a traceback.
        if any(e["type"] in _JSON_ERRORS and not e["loc"] for e in exc.errors(include_url=False)):
            failure = BadRequest("malformed_json")
        else:
            failure = validation_failed(exc)
    raise failure
