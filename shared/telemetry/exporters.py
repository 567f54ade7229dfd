"""Which exporters to build: Azure Monitor when a connection string is set, else the standard `OTEL_*`.

`OTEL_TRACES_EXPORTER` / `OTEL_LOGS_EXPORTER` / `OTEL_METRICS_EXPORTER` are the OpenTelemetry SDK's own
environment variables (not app settings), read here so developers get the behaviour the OTel docs
describe: `console`, `none`, or `otlp` when `opentelemetry-exporter-otlp` is installed (it is not a
dependency of this template, on purpose). The default locally is `console`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from shared.config import Settings


@dataclass(frozen=True)
class Exporters:
    spans: SpanExporter | None
    logs: LogRecordExporter | None
    metrics: MetricExporter | None


def _azure_monitor(settings: Settings) -> Exporters:
    from azure.monitor.opentelemetry.exporter import (
        AzureMonitorLogExporter,
        AzureMonitorMetricExporter,
        AzureMonitorTraceExporter,
    )

    options: dict[str, Any] = {"connection_string": settings.telemetry.app_insights_connection_string}
    if not settings.is_development:
        # Entra ID auth to the ingestion endpoint; the App Insights resource disables local (key) auth.
        from shared.identity import get_credential

        options["credential"] = get_credential()
    else:
        # Locally a failed export is dropped rather than spooled to a temp directory for retry.
        options["disable_offline_storage"] = True
    return Exporters(
        spans=AzureMonitorTraceExporter(**options),
        logs=AzureMonitorLogExporter(**options),
        metrics=AzureMonitorMetricExporter(**options),
    )


def _otlp(signal: str) -> Any | None:
    module_name, class_name = {
        "traces": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
        "logs": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
        "metrics": ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    }[signal]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None  # not installed: OTLP is opt-in, nothing heavy is added to the template
    return getattr(module, class_name)()


def _from_env(signal: str, console: type[Any]) -> Any | None:
    choice = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "console").strip().lower()
    if choice == "none":
        return None
    if choice == "otlp":
        return _otlp(signal)
    return console()


def build_exporters(settings: Settings) -> Exporters:
    if settings.telemetry.app_insights_connection_string:
        return _azure_monitor(settings)
    return Exporters(
        spans=_from_env("traces", ConsoleSpanExporter),
        logs=_from_env("logs", ConsoleLogRecordExporter),
        metrics=_from_env("metrics", ConsoleMetricExporter),
    )
