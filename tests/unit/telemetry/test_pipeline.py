"""The redacting pipeline with in-memory exporters: spans, logs, metrics, set-up and trace context."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.config import get_settings
from shared.scrub import REDACTED
from shared.telemetry import setup
from shared.telemetry.context import invocation_span, parent_context
from shared.telemetry.exporters import build_exporters
from shared.telemetry.setup import TelemetryPipeline, activate, active_pipeline, build_pipeline, deactivate
from tests.conftest import InvocationContext
from tests.fixtures.telemetry import QUIET_EXPORTER_ENV
from tests.security.phi_canaries import EVERYTHING, NAME, SSN, find_canaries


class Memory:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self.metrics = InMemoryMetricReader()
        self.pipeline: TelemetryPipeline = build_pipeline(
            get_settings(), span_exporter=self.spans, log_exporter=self.logs, metric_reader=self.metrics
        )


@pytest.fixture
def memory() -> Iterator[Memory]:
    mem = Memory()
    previous = active_pipeline()
    activate(mem.pipeline)
    try:
        yield mem
    finally:
        deactivate(mem.pipeline, restore=previous)
        mem.pipeline.shutdown()


def test_span_exporter_gets_a_redacted_copy(memory: Memory) -> None:
    with invocation_span(InvocationContext("patients_read"), "patients_read", "http") as span:
        span.set_attribute("patient.name", NAME)
        span.add_event(f"ssn {SSN}", {"ssn": SSN})
        span.record_exception(ValueError(EVERYTHING))
    memory.pipeline.force_flush()
    (exported,) = memory.spans.get_finished_spans()
    assert exported.name == "patients_read"
    assert exported.kind is SpanKind.SERVER
    assert exported.attributes["patient.name"] == REDACTED
    assert exported.attributes["faas.trigger"] == "http"
    exception_event = exported.events[1]
    assert exception_event.attributes["exception.type"] == "ValueError"
    assert "exception.message" not in exception_event.attributes
    assert not find_canaries([exported.to_json()])


def test_logging_goes_through_the_handler_and_the_processor(memory: Memory) -> None:
    logger = logging.getLogger("app.unit")
    logger.warning("patient %s seen, %d notes", NAME, 3, extra={"ssn": SSN, "http.route": "patients/{id}"})
    memory.pipeline.force_flush()
    (record,) = [r.log_record for r in memory.logs.get_finished_logs()]
    assert record.body == f"patient {REDACTED} seen, 3 notes"
    assert record.attributes["ssn"] == REDACTED
    assert record.attributes["http.route"] == "patients/{id}"


def test_records_emitted_through_the_otel_api_are_scrubbed_too(memory: Memory) -> None:
    try:
        raise RuntimeError(EVERYTHING)
    except RuntimeError as exc:
        memory.pipeline.otel_logger("direct").emit(
            LogRecord(body=f"direct ssn {SSN}", attributes={"who": NAME}, exception=exc)
        )
    memory.pipeline.force_flush()
    (record,) = [r.log_record for r in memory.logs.get_finished_logs()]
    assert record.attributes["exception.type"] == "RuntimeError"
    assert "exception.message" not in record.attributes
    assert not find_canaries([str(record.body), str(dict(record.attributes))])


def test_metric_views_keep_only_allow_listed_keys(memory: Memory) -> None:
    counter = memory.pipeline.meter().create_counter("reads")
    counter.add(2, {"http.route": "patients/{id}", "patient.name": NAME})
    data = memory.metrics.get_metrics_data()
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    ]
    assert [dict(p.attributes) for p in points] == [{"http.route": "patients/{id}"}]


def test_sdk_loggers_are_pinned_to_warning_and_restored(memory: Memory) -> None:
    assert logging.getLogger("azure.core.pipeline.policies.http_logging_policy").level == logging.WARNING
    assert logging.getLogger("urllib3").level == logging.WARNING
    assert memory.pipeline.log_handler in logging.getLogger().handlers
    deactivate(memory.pipeline)
    assert memory.pipeline.log_handler not in logging.getLogger().handlers
    activate(memory.pipeline)  # the fixture deactivates again


def test_exporter_logs_never_reenter_the_pipeline(memory: Memory) -> None:
    logging.getLogger("azure.monitor.opentelemetry.exporter.export._base").warning("export failed")
    logging.getLogger("opentelemetry.sdk").warning("dropped")
    memory.pipeline.force_flush()
    assert memory.logs.get_finished_logs() == ()


def test_invocation_span_continues_the_host_trace(memory: Memory) -> None:
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    context = InvocationContext("intake", traceparent=f"00-{trace_id}-{parent_id}-01")
    with invocation_span(context, "intake", "queue"):
        pass
    memory.pipeline.force_flush()
    (span,) = memory.spans.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == trace_id
    assert f"{span.parent.span_id:016x}" == parent_id
    assert span.kind is SpanKind.CONSUMER
    assert span.attributes["faas.invocation_id"] == context.invocation_id


def test_no_trace_context_means_a_new_trace() -> None:
    assert parent_context(None) is None
    assert parent_context(object()) is None


def test_exporters_follow_otel_env_without_a_connection_string(app_env: object) -> None:
    app_env(OTEL_TRACES_EXPORTER="console", OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="otlp")  # type: ignore[operator]
    chosen = build_exporters(get_settings())
    assert type(chosen.spans).__name__ == "ConsoleSpanExporter"
    assert chosen.logs is None
    assert chosen.metrics is None  # otlp is not installed: nothing heavy is pulled in


def test_azure_monitor_exporters_outside_development_use_entra(app_env: object) -> None:
    import uuid

    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

    app_env(  # type: ignore[operator]
        APPLICATIONINSIGHTS_CONNECTION_STRING=f"InstrumentationKey={uuid.uuid4()};IngestionEndpoint=http://127.0.0.1:9/",
        **QUIET_EXPORTER_ENV,  # no SDK-stats exporter left running against the dead port
    )
    chosen = build_exporters(get_settings())
    assert isinstance(chosen.spans, AzureMonitorTraceExporter)
    assert chosen.spans._credential is None  # Development: no credential locally
    settings = get_settings()
    object.__setattr__(settings, "environment", "Production")
    try:
        production = build_exporters(settings)
        assert production.spans._credential is not None  # managed identity (Entra) in Azure
    finally:
        object.__setattr__(settings, "environment", "Development")


def test_configure_telemetry_is_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setup, "_active", None)
    monkeypatch.setattr(setup, "_configured", True)  # globals already set: never touched twice
    first = setup.configure_telemetry(get_settings())
    try:
        assert setup.configure_telemetry(get_settings()) is first
    finally:
        deactivate(first)
        first.shutdown()
