"""Redaction on every signal, all through `shared.scrub`.

- Spans: `RedactingSpanExporter` wraps the real exporter and hands it redacted copies. Since
  opentelemetry-sdk 1.43 a span is immutable by the time `SpanProcessor.on_end` sees it, so redaction
  happens at export, on a new `ReadableSpan`.
- Logs: `RedactingLogHandler` turns a Python `logging` record into an OTel record without ever
  formatting string arguments into the message, and `RedactingLogRecordProcessor.on_emit` scrubs every
  record (including ones emitted straight through the OTel Logs API) before any exporter sees it.
- Metrics: `metric_views()` keeps only allow-listed attribute keys on every instrument.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from shared.scrub import (
    REDACTED,
    SAFE_ATTRIBUTE_KEYS,
    exception_type_name,
    safe_stacktrace,
    safe_status_description,
    scrub_attributes,
    scrub_log_message,
    scrub_text,
)
from shared.telemetry.log_records import REDACTED_MARKER, SAFE_EXC_ATTRIBUTE

# Loggers whose records must never re-enter the pipeline: the exporters log about their own exports.
_EXCLUDED_LOGGERS = ("opentelemetry", "azure.monitor.opentelemetry")


# ------------------------------------------------------------------------------------------- spans
def redact_span(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(
            name=scrub_text(event.name),
            attributes=scrub_attributes(event.attributes),
            timestamp=event.timestamp,
        )
        for event in span.events
    ]
    links = [Link(link.context, scrub_attributes(link.attributes)) for link in span.links]
    status = span.status
    if status.description:
        status = Status(status.status_code, safe_status_description(status.description))
    return ReadableSpan(
        name=scrub_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_attributes(span.attributes),
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Hands the wrapped exporter redacted copies of the spans; the originals are never exported."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


# -------------------------------------------------------------------------------------------- logs
def _scrub_body(body: Any) -> Any:
    if body is None or isinstance(body, bool | int | float):
        return body
    if isinstance(body, str):
        return scrub_text(body)
    if isinstance(body, Mapping):
        return scrub_attributes(body)
    return REDACTED


class _ScrubbedLogRecord(ApiLogRecord):
    """Built only by `RedactingLogHandler`, after scrubbing: the processor need not scrub it twice."""


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Scrubs body and attributes in place before the next processor (and its exporter) sees them.

    Register it first on the `LoggerProvider`: processors run in registration order.
    """

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        if type(record) is _ScrubbedLogRecord:
            return
        record.body = _scrub_body(record.body)
        attributes = record.attributes
        if attributes:
            cleaned = scrub_attributes(attributes)
            for key in [k for k in attributes if k not in cleaned]:
                del attributes[key]  # type: ignore[attr-defined]
            for key, value in cleaned.items():
                if attributes.get(key) != value:
                    attributes[key] = value  # type: ignore[index]
        record.exception = None  # the SDK would re-derive message and stack text from it

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_SEVERITY = (
    (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    (logging.WARNING, SeverityNumber.WARN, "WARN"),
    (logging.INFO, SeverityNumber.INFO, "INFO"),
    (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
)
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    for threshold, number, text in _SEVERITY:
        if levelno >= threshold:
            return number, text
    return SeverityNumber.TRACE, "TRACE"


class RedactingLogHandler(logging.Handler):
    """`logging` -> OTel Logs, with string arguments redacted before the message is ever formatted.

    The SDK's own `LoggingHandler` is deprecated and formats `msg % args` first, which would put a
    patient's name into the body before any scrubber could tell it apart from the template.
    """

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level=level)
        self.logger_provider = logger_provider

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_EXCLUDED_LOGGERS):
            return
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            return  # logged from inside an export: re-exporting it would loop
        try:
            self.logger_provider.get_logger(record.name).emit(self.translate(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    @staticmethod
    def translate(record: logging.LogRecord) -> ApiLogRecord:
        attributes: dict[str, Any] = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        attributes["code.file.path"] = record.pathname
        attributes["code.function.name"] = record.funcName
        attributes["code.line.number"] = record.lineno
        safe_exc = attributes.pop(SAFE_EXC_ATTRIBUTE, None)
        already_redacted = bool(attributes.pop(REDACTED_MARKER, False))
        if record.exc_info and record.exc_info[0] is not None:
            safe_exc = (record.exc_info[0], record.exc_info[2])
        if safe_exc is not None:
            exc_type, tb = safe_exc
            attributes["exception.type"] = exception_type_name(exc_type)
            attributes["exception.stacktrace"] = safe_stacktrace(exc_type, tb)
        number, text = _severity(record.levelno)
        return _ScrubbedLogRecord(
            timestamp=int(record.created * 1e9),
            severity_number=number,
            severity_text=text,
            # A record from the redacting factory carries its scrubbed message already (no args left).
            body=record.msg
            if already_redacted and isinstance(record.msg, str)
            else scrub_log_message(record.msg, record.args),
            attributes=scrub_attributes(attributes),
        )

    def flush(self) -> None:
        return None  # the pipeline owner flushes the provider; a flush per record would be costly


def attach_log_handler(handler: logging.Handler) -> None:
    logging.getLogger().addHandler(handler)


def detach_log_handler(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)


# ----------------------------------------------------------------------------------------- metrics
def metric_views() -> list[View]:
    """Every instrument keeps only allow-listed attribute keys; values under other keys never exist."""
    return [View(instrument_name="*", attribute_keys=set(SAFE_ATTRIBUTE_KEYS))]
