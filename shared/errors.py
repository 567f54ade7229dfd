"""The one error model. Each error has an HTTP status and a stable, documented code.

Error text is fixed per class and never built from input, exception messages or values: the input may
be PHI. Callers add structure (field paths, error codes) through `errors`, never values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class AppError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        code: str | None = None,
        *,
        title: str | None = None,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.errors = tuple(dict(e) for e in errors)
        self.headers = dict(headers or {})
        # The exception text is the stable code only, so a stray log line cannot leak anything.
        super().__init__(self.code)


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "The request is not valid"


class ValidationFailed(BadRequest):
    code, title = "validation_failed", "The request body failed validation"


class Unauthorized(AppError):
    status, code, title = 401, "invalid_token", "Authentication is required"

    def __init__(self, code: str | None = None) -> None:
        super().__init__(code, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(AppError):
    status, code, title = 403, "insufficient_scope", "The caller is not allowed to do this"

    def __init__(self, code: str | None = None) -> None:
        super().__init__(code, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


class NotFound(AppError):
    status, code, title = 404, "not_found", "The resource was not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "The request conflicts with the current state"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "The request body is too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "The content type is not allowed"


class DependencyUnavailable(AppError):
    """A dependency (Key Vault, JWKS, storage, SQL, audit sink) is down: fail closed, return nothing."""

    status, code, title = 503, "dependency_unavailable", "A dependency is unavailable; retry later"

    def __init__(self, dependency: str, code: str | None = None) -> None:
        # `dependency` is a fixed, code-chosen label ("key_vault", "sql"...), never an input value.
        self.dependency = dependency
        super().__init__(code, headers={"Retry-After": "5"})


class PermanentMessageError(AppError):
    """A queue or Service Bus message that can never succeed: poison or dead-letter it, do not retry."""

    status, code, title = 422, "invalid_message", "The message can never be processed"
