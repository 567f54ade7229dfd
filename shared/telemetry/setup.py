"""Configure OpenTelemetry in code, once per process, with redaction on every signal.

The worker's own Azure Monitor set-up (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`) is refused by
`shared.config`; this module is the only place telemetry is wired.

OpenTelemetry's global providers can be set only once per process. So the pipeline is an object
(`TelemetryPipeline`) that our code reaches through `active_pipeline()` / `tracer()`, not through the
globals: tests activate a pipeline of their own (against a loopback ingestion server or an in-memory
exporter) and deactivate it afterwards, and nothing keeps exporting to a dead port. Only
`configure_telemetry` (production start-up) also installs the providers as the OTel globals, so
third-party instrumentation lands in the same redacting pipeline.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry._logs import Logger, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from shared.config import Settings
from shared.telemetry.exporters import build_exporters
from shared.telemetry.log_records import install_redacting_record_factory
from shared.telemetry.redaction import (
    RedactingLogHandler,
    RedactingLogRecordProcessor,
    RedactingSpanExporter,
    attach_log_handler,
    detach_log_handler,
    metric_views,
)

INSTRUMENTATION_NAME = "hipaa_functions"
# SDK loggers that log URLs, headers and bodies at INFO/DEBUG.
SDK_LOGGERS = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "azure.monitor.opentelemetry.exporter",
    "msal",
    "uamqp",  # the SDK-type Service Bus binding decodes with it; its DEBUG lines quote AMQP values
    "urllib3",
)
_METRIC_INTERVAL_MS = 60_000


@dataclass
class TelemetryPipeline:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    log_handler: RedactingLogHandler
    sdk_log_level: str = "WARNING"
    exporting: bool = True  # False when every exporter is `none`: then `logging` is left untouched
    _saved_levels: dict[str, int] = field(default_factory=dict)

    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(INSTRUMENTATION_NAME)

    def otel_logger(self, name: str = INSTRUMENTATION_NAME) -> Logger:
        return self.logger_provider.get_logger(name)

    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter(INSTRUMENTATION_NAME)

    def force_flush(self, timeout_millis: int = 10_000) -> None:
        self.tracer_provider.force_flush(timeout_millis)
        self.logger_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)

    def attach_logging(self) -> None:
        """Route Python `logging` through redaction; pin SDK loggers to the configured level."""
        if not self.exporting or self._saved_levels:
            return
        root = logging.getLogger()
        self._saved_levels[""] = root.level
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        for name in SDK_LOGGERS:
            sdk_logger = logging.getLogger(name)
            self._saved_levels[name] = sdk_logger.level
            sdk_logger.setLevel(self.sdk_log_level)
        attach_log_handler(self.log_handler)

    def detach_logging(self) -> None:
        if not self._saved_levels:
            return
        detach_log_handler(self.log_handler)
        for name, level in self._saved_levels.items():
            logging.getLogger(name or None).setLevel(level)
        self._saved_levels.clear()

    def shutdown(self) -> None:
        self.force_flush()
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def build_pipeline(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    log_exporter: LogRecordExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> TelemetryPipeline:
    """Providers wired with redaction. Exporters come from settings unless given (tests, benchmarks)."""
    if span_exporter is None and log_exporter is None and metric_reader is None:
        chosen = build_exporters(settings)
        span_exporter, log_exporter = chosen.spans, chosen.logs
        if chosen.metrics is not None:
            metric_reader = PeriodicExportingMetricReader(
                chosen.metrics, export_interval_millis=_METRIC_INTERVAL_MS
            )
    resource = Resource.create({SERVICE_NAME: settings.telemetry.service_name})

    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(span_exporter)))

    logger_provider = LoggerProvider(resource=resource)
    # Order matters: the redactor runs before the exporting processor.
    logger_provider.add_log_record_processor(RedactingLogRecordProcessor())
    if log_exporter is not None:
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))

    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[metric_reader] if metric_reader is not None else [],
        views=metric_views(),
    )
    return TelemetryPipeline(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=meter_provider,
        log_handler=RedactingLogHandler(logger_provider),
        sdk_log_level=settings.telemetry.sdk_log_level,
        exporting=any(x is not None for x in (span_exporter, log_exporter, metric_reader)),
    )


_lock = threading.Lock()
_active: TelemetryPipeline | None = None
_configured = False


def activate(pipeline: TelemetryPipeline) -> TelemetryPipeline | None:
    """Make `pipeline` the one our code uses and attach it to `logging`. Returns the previous one."""
    global _active
    with _lock:
        previous = _active
        if previous is not None:
            previous.detach_logging()
        _active = pipeline
        pipeline.attach_logging()
        return previous


def deactivate(pipeline: TelemetryPipeline, restore: TelemetryPipeline | None = None) -> None:
    global _active
    with _lock:
        pipeline.detach_logging()
        _active = restore
        if restore is not None:
            restore.attach_logging()


def active_pipeline() -> TelemetryPipeline | None:
    return _active


def tracer() -> trace.Tracer:
    pipeline = _active
    return pipeline.tracer() if pipeline is not None else trace.get_tracer(INSTRUMENTATION_NAME)


def configure_telemetry(settings: Settings) -> TelemetryPipeline:
    """Idempotent, once per process: build the redacting pipeline, activate it, install the globals."""
    global _configured
    with _lock:
        if _active is not None:
            return _active  # already configured (or a test pipeline is active): first one wins
    # Before anything else: the worker forwards every log record to the host, outside our exporters.
    install_redacting_record_factory()
    pipeline = build_pipeline(settings)
    activate(pipeline)
    with _lock:
        if not _configured:
            # Set-once in OTel: later calls would be ignored with a warning, so only the first does it.
            trace.set_tracer_provider(pipeline.tracer_provider)
            set_logger_provider(pipeline.logger_provider)
            metrics.set_meter_provider(pipeline.meter_provider)
            _configured = True
    return pipeline
