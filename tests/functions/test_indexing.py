"""The host says "0 functions found" and nothing else when an import fails. Guard against that."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import BASE_TEST_ENV, ROOT, FunctionDriver

EXPECTED_FUNCTIONS = {
    "health",
    "patients_create",
    "patients_read",
    "documents_upload",
    "documents_download",
    "document_intake",
    "lab_results",
    "retention_sweep",
}

_INDEX_SCRIPT = """
import json, function_app
out = []
for f in function_app.app.get_functions():
    out.append({"name": f.get_function_name(), **json.loads(f.get_function_json())})
print(json.dumps(out))
"""


def _index_in_fresh_process() -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "LOCAL_SECRET_"))}
    env.update(BASE_TEST_ENV)
    result = subprocess.run(
        [sys.executable, "-c", _INDEX_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_function_app_indexes_expected_functions_in_a_clean_process() -> None:
    names = {str(f["name"]) for f in _index_in_fresh_process()}
    assert names >= EXPECTED_FUNCTIONS, f"missing: {EXPECTED_FUNCTIONS - names}"


def test_every_binding_connection_is_a_setting_name() -> None:
    for function in _index_in_fresh_process():
        for binding in function["bindings"]:  # type: ignore[attr-defined]
            connection = binding.get("connection")
            if connection is None:
                continue
            assert "=" not in connection and ";" not in connection, (
                f"{function['name']}: binding connection must name a setting, not inline a connection string"
            )
            assert connection in {"PhiStorage", "ServiceBusConnection"}, connection


def test_clean_process_import_fails_loudly_without_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_",))}
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "OIDC_TENANT_ID" in result.stderr


def test_driver_sees_the_same_functions(driver: FunctionDriver) -> None:
    assert set(driver.functions) >= EXPECTED_FUNCTIONS


def test_queue_trigger_names_match_the_settings_the_app_enqueues_to() -> None:
    """The binding's queue name is a literal; the app enqueues to `DOCUMENT_INTAKE_QUEUE`. They must agree."""
    from shared.config import load_settings

    expected = load_settings(BASE_TEST_ENV).storage.document_intake_queue
    queue_triggers = [
        binding
        for function in _index_in_fresh_process()
        for binding in function["bindings"]  # type: ignore[attr-defined]
        if binding.get("type") == "queueTrigger"
    ]
    assert [b["queueName"] for b in queue_triggers] == [expected]


def test_lab_results_is_bound_for_settlement_as_the_python_worker_indexes_it() -> None:
    """The worker's indexing rules for SDK-type bindings (azure-functions-python-worker
    `functions.py`/`bindings/meta.py`), applied to the real indexed function: annotations resolved with
    `typing.get_type_hints`, `context` set aside, exactly one unbound parameter and it is a settlement
    client (`GrpcClientType`), the trigger parameter a deferred-binding (`SdkType`) type the extension's
    converter accepts; and the binding itself turns off auto-completion."""
    import typing

    from azurefunctions.extensions.base import get_binding_registry
    from azurefunctions.extensions.bindings.servicebus import ServiceBusConverter

    (lab,) = [f for f in _index_in_fresh_process() if f["name"] == "lab_results"]
    (trigger,) = lab["bindings"]  # type: ignore[misc]
    assert trigger["type"] == "serviceBusTrigger" and trigger["autoCompleteMessages"] is False

    import function_app

    fn = FunctionDriver(function_app.app).get("lab_results")
    hints = typing.get_type_hints(fn.get_user_function())
    registry = get_binding_registry()
    bound = {b.name for b in fn.get_bindings()}
    unbound = set(hints) - bound - {"context", "return"}
    assert unbound == {"message_actions"}
    assert registry.check_supported_grpc_client_type(hints["message_actions"])
    assert registry.check_supported_type(hints[fn.get_trigger().name])
    assert ServiceBusConverter.check_input_type_annotation(hints[fn.get_trigger().name])
    assert registry.get("serviceBusTrigger") is ServiceBusConverter
