"""The PHI route observer: every invocation in a span, every 401/403 in the audit trail.

Registered once by the composition root (`function_app.py`) with `shared.http_route.add_observer`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry import trace

from shared.audit import audit_trail
from shared.errors import AppError
from shared.http_route import RequestContext, RouteObserver
from shared.principal import Principal
from shared.telemetry.context import invocation_span


class TelemetryAuditObserver(RouteObserver):
    # One per process: registering it twice (composition root + a test) must not audit twice.
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def invocation(self, ctx: RequestContext) -> AbstractContextManager[object]:
        return invocation_span(ctx, ctx.function_name, "http")

    def on_denied(self, ctx: RequestContext, error: AppError, principal: Principal | None) -> None:
        # Raises DependencyUnavailable("audit") if it cannot be recorded: the pipeline answers 503.
        audit_trail().record_denied(error.code, principal, ctx, forwarded_for=ctx.forwarded_for)

    def on_complete(self, ctx: RequestContext, principal: Principal | None, status: int) -> None:
        span = trace.get_current_span()
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)
