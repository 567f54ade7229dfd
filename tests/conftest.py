"""Root test harness: a synthetic base environment, a real Azurite, and a driver for registered functions.

The Functions host cannot run here, so `FunctionDriver` plays its part: it finds functions through
`function_app.app.get_functions()` (the same indexing the host does) and calls them with real
`azure.functions` request and message objects.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions._abc import TraceContext
from hypothesis import settings as hypothesis_settings

# The public Azurite emulator account, free ports and the Azurite launcher live in one place, shared
# with `make demo`; re-exported here for the tests.
from scripts.local_stack import AZURITE_ACCOUNT, AZURITE_KEY, free_port  # noqa: F401
from scripts.local_stack import azurite as start_azurite

ROOT = Path(__file__).resolve().parent.parent

# Fixture modules per area, so each area's fixtures stay next to each other and out of this file.
pytest_plugins = [
    "tests.fixtures.oidc",
    "tests.fixtures.telemetry",
    "tests.fixtures.data",
    "tests.fixtures.workload",
]

# A synthetic, complete Development environment. Tenant and client ids are random per run, never real.
BASE_TEST_ENV: dict[str, str] = {
    "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "OIDC_TENANT_ID": str(uuid.uuid4()),
    "OIDC_AUDIENCE": str(uuid.uuid4()),
    "PhiStorage": "UseDevelopmentStorage=true",
    "ServiceBusConnection": (
        "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    ),
    "LOCAL_SECRET_PSEUDONYM_KEY": "test-only-pseudonym-key-" + uuid.uuid4().hex,
    "LOCAL_SQLITE_PATH": ":memory:",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
}
_LEAKY_VARS = (
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "KEY_VAULT_URI",
    "SQL_SERVER",
    "AZURE_CLIENT_ID",
)
for _name in _LEAKY_VARS:
    os.environ.pop(_name, None)
os.environ.update(BASE_TEST_ENV)


# CI runs are reproducible: the same examples every run, and no example database carried between runs.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def reset_process_state() -> None:
    """Forget every per-process singleton in `shared` (settings, credentials, clients, caches).

    Production code builds these once per process with `functools.lru_cache`; tests that change the
    environment call this so the next use rebuilds them from the new settings.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "shared" or name.startswith("shared.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set extra app settings for one test; process singletons are rebuilt before and after."""

    def apply(**values: str | None) -> None:
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        reset_process_state()

    reset_process_state()
    yield apply
    monkeypatch.undo()
    reset_process_state()


# --------------------------------------------------------------------------------------------- Azurite
@dataclass(frozen=True)
class Azurite:
    blob_endpoint: str
    queue_endpoint: str
    connection_string: str


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite on free loopback ports with throw-away data; always stopped afterwards.

    The same launcher `make demo` uses (`scripts/local_stack.py`)."""
    if not (ROOT / "node_modules" / ".bin" / "azurite").exists():
        pytest.fail("node_modules/.bin/azurite is missing: run the tests through `make test` (npm ci)")
    with start_azurite() as endpoints:
        yield Azurite(endpoints.blob, endpoints.queue, endpoints.connection_string)


@pytest.fixture
def azurite_env(azurite: Azurite, app_env: Callable[..., None]) -> Azurite:
    """Point the app's `PhiStorage` connection at the session Azurite for one test."""
    app_env(PhiStorage=azurite.connection_string)
    return azurite


# ------------------------------------------------------------------------------------ function driver
class FakeTraceContext(TraceContext):  # type: ignore[misc]
    """What the host passes: W3C trace context of the invocation."""

    def __init__(self, traceparent: str, tracestate: str = "") -> None:
        self._parent, self._state = traceparent, tracestate

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):  # type: ignore[misc]
    """The per-invocation context the host would pass (the host itself cannot run here)."""

    def __init__(self, function_name: str, traceparent: str | None = None, retry_count: int = 0) -> None:
        self._id = str(uuid.uuid4())
        self._name = function_name
        self._trace = FakeTraceContext(traceparent or f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01")
        self._retry_count = retry_count

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return str(ROOT)

    @property
    def trace_context(self) -> FakeTraceContext:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return types.SimpleNamespace(retry_count=self._retry_count, max_retry_count=0, exception=None)


_INDEX: dict[int, list[Any]] = {}


def indexed_functions(app: func.FunctionApp) -> list[Any]:
    """`get_functions()` validates and builds; with blueprints it is not idempotent, so index once."""
    if id(app) not in _INDEX:
        _INDEX[id(app)] = list(app.get_functions())
    return _INDEX[id(app)]


class FunctionDriver:
    """Find registered functions the way the host indexes them, and invoke them with real objects."""

    def __init__(self, app: func.FunctionApp) -> None:
        self.app = app
        self.functions = {f.get_function_name(): f for f in indexed_functions(app)}
        # What the worker passes to a `message_actions` (settlement client) parameter when a test does
        # not pass its own: the `clinical` fixture sets a real client wired to a loopback gRPC server.
        self.message_actions: Any = None

    def get(self, name: str) -> Any:
        try:
            return self.functions[name]
        except KeyError:
            raise AssertionError(
                f"function {name!r} is not registered; have {sorted(self.functions)}"
            ) from None

    def route_of(self, name: str) -> str:
        return str(self.get(name).get_trigger().route)

    def find_route(self, method: str, path: str) -> tuple[Any, dict[str, str]]:
        """Match `path` (without /api) against route templates like `patients/{id}/documents`."""
        segments = path.strip("/").split("/")
        for fn in self.functions.values():
            trigger = fn.get_trigger()
            if getattr(trigger, "type", "") != "httpTrigger":
                continue
            methods = [str(getattr(m, "value", m)).upper() for m in (trigger.methods or [])]
            if methods and method.upper() not in methods:
                continue
            template = str(trigger.route).strip("/").split("/")
            if len(template) != len(segments):
                continue
            params: dict[str, str] = {}
            for t, s in zip(template, segments, strict=True):
                if t.startswith("{") and t.endswith("}"):
                    params[t[1:-1].split(":")[0]] = s
                elif t != s:
                    break
            else:
                return fn, params
        raise AssertionError(f"no function serves {method} /api/{path.strip('/')}")

    def _call(
        self,
        fn: Any,
        primary: str,
        value: Any,
        context: InvocationContext | None,
        extras: Mapping[str, Any] | None = None,
    ) -> Any:
        user_function = fn.get_user_function()
        kwargs: dict[str, Any] = {}
        for pname in inspect.signature(user_function).parameters:
            if pname == "context":
                kwargs[pname] = context or InvocationContext(fn.get_function_name())
            elif pname == primary:
                kwargs[pname] = value
            elif extras and pname in extras:
                kwargs[pname] = extras[pname]
            else:
                raise AssertionError(f"{fn.get_function_name()}: unexpected parameter {pname!r}")
        return user_function(**kwargs)

    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        context: InvocationContext | None = None,
    ) -> func.HttpResponse:
        fn, route_params = self.find_route(method, path)
        request = func.HttpRequest(
            method=method.upper(),
            url=f"http://localhost:7071/api/{path.strip('/')}",
            headers=dict(headers or {}),
            params=dict(params or {}),
            route_params=route_params,
            body=body,
        )
        binding = fn.get_trigger().name
        response = self._call(fn, binding, request, context)
        assert isinstance(response, func.HttpResponse), "HTTP functions must return an HttpResponse"
        return response

    def queue(self, name: str, message: func.QueueMessage, context: InvocationContext | None = None) -> Any:
        fn = self.get(name)
        return self._call(fn, fn.get_trigger().name, message, context)

    def service_bus(
        self, name: str, message: Any, context: InvocationContext | None = None, *, actions: Any = None
    ) -> Any:
        """`actions` goes to a `message_actions` parameter (SDK-type binding settlement client)."""
        fn = self.get(name)
        actions = actions if actions is not None else self.message_actions
        extras = {"message_actions": actions} if actions is not None else None
        return self._call(fn, fn.get_trigger().name, message, context, extras)

    def timer(self, name: str, past_due: bool = False, context: InvocationContext | None = None) -> Any:
        fn = self.get(name)
        from azure.functions.timer import TimerRequest  # the concrete class; func.TimerRequest is abstract

        return self._call(fn, fn.get_trigger().name, TimerRequest(past_due=past_due), context)


@pytest.fixture
def function_app_module() -> types.ModuleType:
    import function_app

    return function_app


@pytest.fixture
def driver(function_app_module: types.ModuleType) -> FunctionDriver:
    return FunctionDriver(function_app_module.app)
