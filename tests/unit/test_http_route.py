"""`phi_route` through real indexing (`get_functions`) and the FunctionDriver, with real tokens."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import azure.functions as func
import pytest

from shared.errors import AppError, DependencyUnavailable
from shared.http_route import CORRELATION_HEADER, RequestContext, RouteObserver, add_observer, remove_observer
from shared.principal import Principal
from tests.conftest import FunctionDriver, InvocationContext, indexed_functions
from tests.fixtures.oidc import PROBE_CALLS, DenialRecorder, OidcServer, probe_app


def test_indexed_functions_expose_only_req_and_context() -> None:
    functions = {f.get_function_name(): f for f in indexed_functions(probe_app())}
    assert {"probe_read", "probe_download", "probe_lab"} <= set(functions)
    for fn in functions.values():
        user_function = fn.get_user_function()
        assert not hasattr(user_function, "__wrapped__")
        assert list(inspect.signature(user_function).parameters) == ["req", "context"]
        bindings = json.loads(fn.get_function_json())["bindings"]
        assert {b["name"] for b in bindings} == {"req", "$return"}


def test_valid_token_reaches_the_handler_with_the_right_principal(
    oidc: OidcServer, probe_driver: FunctionDriver
) -> None:
    oid = str(uuid.uuid4())
    trace_id = uuid.uuid4().hex
    context = InvocationContext("probe_read", traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")
    response = probe_driver.http(
        "GET",
        f"probe/patients/{uuid.uuid4()}",
        headers=oidc.bearer(roles=["Billing"], oid=oid),
        context=context,
    )
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"oid": oid, "view": "billing"}
    assert PROBE_CALLS.principals == [
        Principal(
            oid=oid,
            tid=oidc.tenant_id,
            azp=oidc.client_app,
            scopes=frozenset({"Clinical.Access"}),
            roles=frozenset({"Billing"}),
        )
    ]
    ctx = PROBE_CALLS.contexts[0]
    assert ctx.correlation_id == trace_id == response.headers[CORRELATION_HEADER]
    assert ctx.invocation_id == context.invocation_id and ctx.function_name == "probe_read"


def test_app_token_reaches_the_app_only_route(oidc: OidcServer, probe_driver: FunctionDriver) -> None:
    response = probe_driver.http("POST", "probe/lab-results", headers=oidc.bearer(oidc.app_token()))
    assert response.status_code == 200
    assert PROBE_CALLS.principals[0].is_app_only


def test_role_not_allowed_on_the_route_is_403_before_the_handler(
    oidc: OidcServer, probe_driver: FunctionDriver, denials: DenialRecorder
) -> None:
    response = probe_driver.http(
        "GET", f"probe/documents/{uuid.uuid4()}", headers=oidc.bearer(roles=["Intake"])
    )
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert PROBE_CALLS.principals == [] and denials.denials == [(403, "insufficient_scope")]
    assert denials.completions == [403]


def test_correlation_id_is_random_without_a_valid_traceparent(
    oidc: OidcServer, probe_driver: FunctionDriver
) -> None:
    context = InvocationContext("probe_read", traceparent="00-" + "0" * 32 + "-0000000000000001-01")
    first = probe_driver.http("GET", "probe/patients/1", context=context)
    second = probe_driver.http("GET", "probe/patients/1", context=InvocationContext("p", traceparent="junk"))
    ids = {first.headers[CORRELATION_HEADER], second.headers[CORRELATION_HEADER]}
    assert len(ids) == 2 and "0" * 32 not in ids
    assert json.loads(first.get_body())["correlationId"] == first.headers[CORRELATION_HEADER]


def test_unexpected_error_is_a_bare_500_and_logs_only_the_type(
    oidc: OidcServer, probe_driver: FunctionDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = probe_driver.http("GET", "probe/crash", headers=oidc.bearer())
    assert response.status_code == 500
    body = json.loads(response.get_body())
    assert body["code"] == "internal_error" and set(body) == {
        "type",
        "title",
        "status",
        "code",
        "correlationId",
    }
    assert "RuntimeError" in caplog.text
    assert "Canary" not in caplog.text and "Canary" not in response.get_body().decode()
    assert all(r.exc_info is None for r in caplog.records)


def test_app_error_from_the_handler_becomes_its_problem(
    oidc: OidcServer, probe_driver: FunctionDriver
) -> None:
    response = probe_driver.http("GET", "probe/missing", headers=oidc.bearer())
    assert response.status_code == 404 and json.loads(response.get_body())["code"] == "not_found"
    assert response.headers["Cache-Control"] == "no-store"


def test_jwks_down_from_cold_start_is_503(oidc: OidcServer, probe_driver: FunctionDriver) -> None:
    oidc.down = True
    response = probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer())
    assert response.status_code == 503
    assert json.loads(response.get_body())["code"] == "dependency_unavailable"
    assert PROBE_CALLS.principals == []


def test_jwks_down_after_warm_up_keeps_serving_known_keys(
    oidc: OidcServer, probe_driver: FunctionDriver
) -> None:
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer()).status_code == 200
    oidc.down = True
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer()).status_code == 200
    stranger = oidc.token(key=oidc.attacker_key())
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer(stranger)).status_code == 401


def test_rotation_through_the_pipeline(oidc: OidcServer, probe_driver: FunctionDriver) -> None:
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer()).status_code == 200
    before = oidc.jwks_fetches
    oidc.rotate()
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer()).status_code == 200
    assert oidc.jwks_fetches == before + 1


def test_kid_spray_through_the_pipeline(oidc: OidcServer, probe_driver: FunctionDriver) -> None:
    assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer()).status_code == 200
    before = oidc.fetches
    attacker = oidc.attacker_key()
    claims = oidc.claims()
    for _ in range(1000):
        token = oidc.sign(claims, headers={"kid": uuid.uuid4().hex}, key=attacker)
        assert probe_driver.http("GET", "probe/patients/1", headers=oidc.bearer(token)).status_code == 401
    assert oidc.fetches - before <= 2  # one forced refresh = one metadata + one JWKS request
    assert oidc.jwks_fetches <= 2


class _Failing(RouteObserver):
    def __init__(self, where: str) -> None:
        self.where = where
        self.spans: list[str] = []

    @contextmanager
    def _span(self, ctx: RequestContext) -> Iterator[None]:
        self.spans.append("start")
        if self.where == "invocation":
            raise RuntimeError("span exporter broke")
        yield
        self.spans.append("end")

    def invocation(self, ctx: RequestContext) -> Iterator[None]:  # type: ignore[override]
        return self._span(ctx)

    def on_denied(self, ctx: RequestContext, error: AppError, principal: Principal | None) -> None:
        if self.where == "denied":
            raise DependencyUnavailable("audit")

    def on_complete(self, ctx: RequestContext, principal: Principal | None, status: int) -> None:
        if self.where == "complete":
            raise DependencyUnavailable("audit")


@pytest.mark.parametrize(
    ("where", "headers_valid", "status"),
    [("complete", True, 503), ("denied", False, 503), ("invocation", True, 500), ("nowhere", True, 200)],
)
def test_observer_failures_fail_closed(
    oidc: OidcServer, probe_driver: FunctionDriver, where: str, headers_valid: bool, status: int
) -> None:
    observer = _Failing(where)
    add_observer(observer)
    try:
        headers = oidc.bearer() if headers_valid else {}
        response = probe_driver.http("GET", "probe/patients/1", headers=headers)
    finally:
        remove_observer(observer)
    assert response.status_code == status
    assert b"oid" not in response.get_body() or status == 200
    if where == "nowhere":
        assert observer.spans == ["start", "end"]


def test_http_function_signature_is_what_the_worker_expects() -> None:
    from shared.http_route import phi_route
    from shared.roles import PATIENT_READ

    @phi_route(PATIENT_READ)
    def handler(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
        """Doc."""
        raise AssertionError

    assert handler.__name__ == "handler" and handler.__doc__ == "Doc."
    assert handler.__annotations__ == {
        "req": func.HttpRequest,
        "context": func.Context,
        "return": func.HttpResponse,
    }
