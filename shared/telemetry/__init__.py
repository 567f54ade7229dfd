"""PHI-safe OpenTelemetry: one redacting pipeline for traces, logs and metrics (see setup.py)."""

from shared.telemetry.context import invocation_span
from shared.telemetry.setup import active_pipeline, configure_telemetry, tracer

__all__ = ["active_pipeline", "configure_telemetry", "invocation_span", "tracer"]
