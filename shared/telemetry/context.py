"""Invocation spans that continue the host's trace (W3C traceparent/tracestate from the Functions context).

Without this, the worker's spans start new traces and a request cannot be followed from APIM through
the host into our code. Span names and attributes here are code-chosen (function name, trigger kind,
invocation id); anything a caller adds still passes the exporter's redaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.telemetry.setup import tracer

_PROPAGATOR = TraceContextTextMapPropagator()
# Functions trigger kind -> (OTel span kind, semconv faas.trigger)
_KINDS: dict[str, tuple[SpanKind, str]] = {
    "http": (SpanKind.SERVER, "http"),
    "queue": (SpanKind.CONSUMER, "pubsub"),
    "servicebus": (SpanKind.CONSUMER, "pubsub"),
    "timer": (SpanKind.INTERNAL, "timer"),
    "other": (SpanKind.INTERNAL, "other"),
}


def parent_context(invocation_context: Any | None) -> otel_context.Context | None:
    """The host's trace context for this invocation, or None (a new trace) if it has none."""
    # A Functions `Context` carries `trace_context`; `shared.http_route.RequestContext` carries the
    # traceparent string itself.
    trace_context = getattr(invocation_context, "trace_context", None) or invocation_context
    traceparent = getattr(trace_context, "trace_parent", None)
    if not isinstance(traceparent, str) or not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    tracestate = getattr(trace_context, "trace_state", None)
    if isinstance(tracestate, str) and tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


@contextmanager
def invocation_span(
    invocation_context: Any | None,
    function_name: str,
    kind: str = "http",
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span]:
    """Run one invocation inside a span parented on the host's trace context.

    Exceptions are recorded (type only reaches the exporter) and re-raised.
    """
    span_kind, trigger = _KINDS.get(kind, _KINDS["other"])
    base: dict[str, str | int | float | bool] = {"faas.name": function_name, "faas.trigger": trigger}
    invocation_id = getattr(invocation_context, "invocation_id", None)
    if invocation_id:
        base["faas.invocation_id"] = str(invocation_id)
    with tracer().start_as_current_span(
        function_name,
        context=parent_context(invocation_context),
        kind=span_kind,
        attributes={**base, **(attributes or {})},
    ) as span:
        yield span
