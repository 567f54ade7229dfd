"""THE pipeline for PHI HTTP routes: correlation id -> authenticate -> authorize -> handler -> response.

Usage (every HTTP route except health)::

    @bp.function_name("patients_read")
    @bp.route(route="patients/{id}", methods=["GET"])
    @phi_route(PATIENT_READ)
    def read_patient(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
        ...

What it guarantees:
- the handler runs only for an authenticated caller the permission allows: 401 (`invalid_token`) and
  403 (`insufficient_scope`) are decided before it runs, so a denied caller learns nothing about
  whether the resource exists;
- `AppError` becomes its RFC 9457 problem response; anything else becomes a bare 500 carrying the
  correlation id, and only the exception's *type name* is logged (messages and tracebacks may hold
  PHI or token material);
- every response carries `X-Correlation-Id` and, unless the handler chose otherwise, `no-store`.

The host indexes the function this returns, so it exposes exactly `(req, context)` and has no
`__wrapped__`: the worker follows `__wrapped__` to find parameters and would then look for bindings
named `principal` and `ctx`.

Extension point: `RouteObserver` (span around each invocation, audit of denials and completions),
registered once at start-up with `add_observer`.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass

import azure.functions as func

from shared.auth.bearer import extract_bearer_token
from shared.auth.validator import get_token_validator
from shared.errors import AppError, Forbidden, Unauthorized
from shared.principal import Principal
from shared.problem import internal_error_response, problem_response
from shared.roles import Permission
from shared.scrub import exception_type_name, safe

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class RequestContext:
    """Per-invocation facts a handler may use. Nothing here comes from the request body or token."""

    correlation_id: str
    function_name: str
    invocation_id: str
    trace_parent: str | None
    permission: Permission
    # As received; only `shared.audit` interprets it, and only when TRUST_FORWARDED_FOR says APIM set it.
    forwarded_for: str | None = None


Handler = Callable[[func.HttpRequest, Principal, RequestContext], func.HttpResponse]
HttpFunction = Callable[[func.HttpRequest, func.Context], func.HttpResponse]


class RouteObserver:
    """Override what you need; the defaults do nothing.

    - `invocation(ctx)`: a context manager around the whole invocation, authentication included
      (e.g. a span). It sees no exception: the pipeline turns every failure into a response.
    - `on_denied(ctx, error, principal)`: a 401 or 403 was decided (principal is None for a 401).
    - `on_complete(ctx, principal, status)`: called once with the final status.
    An observer that raises `AppError` (e.g. `DependencyUnavailable("audit")`) replaces the response
    with that error's problem response: if an access cannot be audited, no PHI is returned.
    """

    def invocation(self, ctx: RequestContext) -> AbstractContextManager[object]:
        return nullcontext()

    def on_denied(self, ctx: RequestContext, error: AppError, principal: Principal | None) -> None:
        return None

    def on_complete(self, ctx: RequestContext, principal: Principal | None, status: int) -> None:
        return None


_OBSERVERS: list[RouteObserver] = []


def add_observer(observer: RouteObserver) -> None:
    """Register a process-wide observer (composition root, once, before serving)."""
    if observer not in _OBSERVERS:
        _OBSERVERS.append(observer)


def remove_observer(observer: RouteObserver) -> None:
    if observer in _OBSERVERS:
        _OBSERVERS.remove(observer)


def correlation_id_from(context: func.Context | None) -> str:
    """The invocation's W3C trace id when there is a valid one, so logs, spans and errors join up."""
    trace_context = getattr(context, "trace_context", None)
    parent = getattr(trace_context, "trace_parent", None)
    if isinstance(parent, str):
        match = _TRACEPARENT.match(parent)
        if match and match.group(1) != "0" * 32:
            return match.group(1)
    return uuid.uuid4().hex


def phi_route(permission: Permission) -> Callable[[Handler], HttpFunction]:
    def decorate(handler: Handler) -> HttpFunction:
        def function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
            return _invoke(handler, permission, req, context)

        function.__name__ = handler.__name__
        function.__qualname__ = handler.__qualname__
        function.__module__ = handler.__module__
        function.__doc__ = handler.__doc__
        function.__annotations__ = {
            "req": func.HttpRequest,
            "context": func.Context,
            "return": func.HttpResponse,
        }
        function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    "req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=func.HttpRequest
                ),
                inspect.Parameter(
                    "context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=func.Context
                ),
            ],
            return_annotation=func.HttpResponse,
        )
        function.phi_permission = permission  # type: ignore[attr-defined]  # lets tests list PHI routes
        return function

    return decorate


def _invoke(
    handler: Handler, permission: Permission, req: func.HttpRequest, context: func.Context | None
) -> func.HttpResponse:
    ctx = RequestContext(
        correlation_id=correlation_id_from(context),
        function_name=str(getattr(context, "function_name", "") or handler.__name__),
        invocation_id=str(getattr(context, "invocation_id", "") or ""),
        trace_parent=getattr(getattr(context, "trace_context", None), "trace_parent", None),
        permission=permission,
        forwarded_for=req.headers.get("X-Forwarded-For"),
    )
    observers = tuple(_OBSERVERS)
    try:
        with ExitStack() as stack:
            for observer in observers:
                stack.enter_context(observer.invocation(ctx))
            response = _guarded(handler, permission, req, ctx, observers)
    except Exception as exc:  # noqa: BLE001 - an observer failed outside the guarded part (span set-up)
        response = _error_response(exc, ctx)
    response.headers[CORRELATION_HEADER] = ctx.correlation_id
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _guarded(
    handler: Handler,
    permission: Permission,
    req: func.HttpRequest,
    ctx: RequestContext,
    observers: tuple[RouteObserver, ...],
) -> func.HttpResponse:
    principal: Principal | None = None
    try:
        try:
            principal = get_token_validator().validate(extract_bearer_token(req))
            permission.require(principal)
        except (Unauthorized, Forbidden) as denial:
            for observer in observers:
                observer.on_denied(ctx, denial, principal)
            raise
        response = handler(req, principal, ctx)
        if not isinstance(response, func.HttpResponse):
            raise TypeError("handler did not return an HttpResponse")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a response; nothing escapes to the host
        response = _error_response(exc, ctx)
    try:
        for observer in observers:
            observer.on_complete(ctx, principal, response.status_code)
    except Exception as exc:  # noqa: BLE001 - see below
        # Fail closed: a response whose access could not be recorded is not sent.
        response = _error_response(exc, ctx)
    return response


def _error_response(exc: Exception, ctx: RequestContext) -> func.HttpResponse:
    if isinstance(exc, AppError):
        return problem_response(exc, ctx.correlation_id)
    # Type name only: exception text and tracebacks can carry PHI or token material.
    logger.error(
        "Unhandled %s in %s (correlation id %s)",
        exception_type_name(exc),
        safe(ctx.function_name),
        safe(ctx.correlation_id),
    )
    return internal_error_response(ctx.correlation_id)
