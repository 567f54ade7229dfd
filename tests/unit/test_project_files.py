"""The committed host and local settings keep the properties the README and docs promise."""

from __future__ import annotations

import json
from typing import Any

from shared.config import load_settings
from tests.conftest import ROOT


def _json(name: str) -> Any:
    return json.loads((ROOT / name).read_text())


def test_host_json_uses_opentelemetry_and_the_v4_bundle() -> None:
    host = _json("host.json")
    assert host["telemetryMode"] == "OpenTelemetry"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    assert host["functionTimeout"] == "00:05:00"


def test_host_logging_never_reaches_levels_that_emit_bodies() -> None:
    levels = _json("host.json")["logging"]["logLevel"]
    assert levels["default"] == "Warning"
    assert all(level in {"Warning", "Information", "Error", "None"} for level in levels.values()), levels
    assert all(levels[name] == "Warning" for name in levels if name.startswith(("Azure.", "Microsoft")))


def test_queue_and_service_bus_settings_bound_retries() -> None:
    extensions = _json("host.json")["extensions"]
    assert 1 <= extensions["queues"]["maxDequeueCount"] <= 10
    assert extensions["queues"]["messageEncoding"] == "base64"  # what shared/storage.py enqueues
    assert extensions["serviceBus"]["maxConcurrentCalls"] >= 1
    assert "autoCompleteMessages" in extensions["serviceBus"]
    assert _json("host.json")["retry"]["maxRetryCount"] <= 5


def test_sample_settings_are_a_loadable_development_configuration() -> None:
    values = _json("local.settings.sample.json")["Values"]
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in values
    settings = load_settings(values)  # the sample must start as-is
    assert settings.is_development
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"
    assert values["ServiceBusConnection"].endswith("UseDevelopmentEmulator=true;")


def test_sample_settings_hold_no_real_secret_or_tenant() -> None:
    values = _json("local.settings.sample.json")["Values"]
    assert values["OIDC_TENANT_ID"] == "00000000-0000-0000-0000-000000000000"
    assert "AccountKey=" not in json.dumps(values)  # Azurite via UseDevelopmentStorage=true only
    assert "SAS_KEY_VALUE" in values["ServiceBusConnection"]  # the emulator's documented placeholder
