"""The redacting telemetry pipeline vs the same pipeline without redaction, per span and per log record.

Same providers, same synchronous processor, same in-memory exporter; the only difference is
`RedactingSpanExporter` (spans) and `RedactingLogHandler` + `RedactingLogRecordProcessor` (logs) versus
the SDK's plain `LoggingHandler`. Workload: what one invocation typically emits (a server span with
route/method/status/ids and one unknown attribute and an event; an INFO record with two arguments and
an `extra`). Goal: <= 1.5x. Run with `make bench`, or `python -m tests.benchmarks.test_redaction_bench`.
"""

from __future__ import annotations

import logging
import timeit
import warnings
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.telemetry.redaction import RedactingLogHandler, RedactingLogRecordProcessor, RedactingSpanExporter


class _QuietLoggingHandler(LoggingHandler):
    """The SDK handler, minus its flush-on-exit thread (not on the emit path being measured)."""

    def flush(self) -> None:
        return None


def _span_emitter(redact: bool) -> tuple[Callable[[], None], InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(memory) if redact else memory))
    tracer = provider.get_tracer("bench")

    def emit() -> None:
        with tracer.start_as_current_span("patients_read", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.route", "patients/{id}")
            span.set_attribute("http.response.status_code", 200)
            span.set_attribute("faas.invocation_id", "6f1c2b0e-4a0e-4b7e-9a39-0c1d2e3f4a5b")
            span.set_attribute("app.view", "clinician")
            span.add_event("patient read", {"app.count": 1})
        memory.clear()

    return emit, memory


def _log_emitter(redact: bool) -> tuple[Callable[[], None], InMemoryLogRecordExporter]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    if redact:
        provider.add_log_record_processor(RedactingLogRecordProcessor())
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler: logging.Handler
    if redact:
        handler = RedactingLogHandler(provider)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's own handler, as a baseline
            handler = _QuietLoggingHandler(logger_provider=provider)
    logger = logging.getLogger(f"bench.redaction.{redact}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers.clear()
    logger.addHandler(handler)

    def emit() -> None:
        logger.info(
            "read %s for role %s in %d ms", "patient", "clinician", 12, extra={"http.route": "patients/{id}"}
        )
        memory.clear()

    return emit, memory


def test_bench_span_redacting(benchmark: Any) -> None:
    emit, _ = _span_emitter(redact=True)
    benchmark(emit)


def test_bench_span_bare(benchmark: Any) -> None:
    emit, _ = _span_emitter(redact=False)
    benchmark(emit)


def test_bench_log_redacting(benchmark: Any) -> None:
    emit, _ = _log_emitter(redact=True)
    benchmark(emit)


def test_bench_log_bare(benchmark: Any) -> None:
    emit, _ = _log_emitter(redact=False)
    benchmark(emit)


def test_redacting_emitters_do_redact() -> None:
    """The benchmark measures the real thing: the redacting side really changes what is exported."""
    emit, spans = _span_emitter(redact=True)
    spans.clear = lambda: None  # type: ignore[method-assign]  # keep what was exported
    emit()
    assert spans.get_finished_spans()[0].attributes["app.view"] == "[redacted]"
    emit_log, logs = _log_emitter(redact=True)
    logs.clear = lambda: None  # type: ignore[method-assign]
    emit_log()
    assert logs.get_finished_logs()[0].log_record.body == "read [redacted] for role [redacted] in 12 ms"


def measure(number: int = 3000, repeat: int = 7) -> dict[str, tuple[float, float, float]]:
    """Best-of-`repeat` microseconds per item, redacting vs bare, measured in the same run."""
    out: dict[str, tuple[float, float, float]] = {}
    for name, factory in (("span", _span_emitter), ("log record", _log_emitter)):
        ours_emit, _ = factory(True)
        bare_emit, _ = factory(False)
        ours = min(timeit.repeat(ours_emit, number=number, repeat=repeat)) / number * 1e6
        bare = min(timeit.repeat(bare_emit, number=number, repeat=repeat)) / number * 1e6
        out[name] = (ours, bare, ours / bare)
    return out


def test_ratio_is_reported(capsys: Any) -> None:
    """Prints the figures; deliberately asserts no timing (that would flake)."""
    figures = measure(number=50, repeat=3)
    with capsys.disabled():
        for name, (ours, bare, ratio) in figures.items():
            print(f"\nredaction per {name}: ours {ours:.1f} us, bare {bare:.1f} us, ratio {ratio:.2f}x")
    assert all(ours > 0 and bare > 0 for ours, bare, _ in figures.values())


if __name__ == "__main__":
    for name, (ours, bare, ratio) in measure().items():
        print(f"per {name}: redacting {ours:.1f} us, bare {bare:.1f} us, ratio {ratio:.2f}x (goal <= 1.5x)")
