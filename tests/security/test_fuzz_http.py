"""Fuzzing every HTTP route through the registered functions (hypothesis, >= 1,000 inputs per route).

Real parts: the registered functions with real `azure.functions` objects, RS256 tokens against the
loopback JWKS, Azurite for Blob/Queue, the embedded SQLite database. For every generated request:
- never a 5xx (the documented dependency-outage 503 is the only exception, and cannot occur here);
- nothing escapes the function (the driver calls it directly: an exception would fail the test);
- an error is problem+json with fixed keys only, and no generated string (>= 6 chars) appears in
  the response body or headers.
Each test builds its fixtures once and runs the property inside, counting the examples it ran.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.roles import Role
from tests.conftest import InvocationContext
from tests.fixtures.data import patient_create_body
from tests.fixtures.workload import PDF, Clinical
from tests.security.fuzzing import (
    EXAMPLES,
    FUZZ_SETTINGS,
    Fuzzed,
    any_text,
    assert_no_echo,
    assert_not_server_error,
    assert_problem_shape,
    canary_text,
    json_bodies,
    words_in,
)
from tests.security.phi_canaries import SECRETS

pytestmark = [pytest.mark.security, pytest.mark.integration]

ROLES = [Role.CLINICIAN, Role.INTAKE, Role.BILLING, Role.RESEARCHER, Role.LAB_SYSTEM]


class Caller:
    """Pre-minted tokens per role (RS256 signing per example would dominate the run time)."""

    def __init__(self, clinical: Clinical) -> None:
        oidc = clinical.oidc
        self.headers: dict[str, dict[str, str]] = {
            str(role): oidc.bearer(roles=[str(role)]) for role in ROLES if role is not Role.LAB_SYSTEM
        }
        self.headers[str(Role.LAB_SYSTEM)] = oidc.bearer(oidc.app_token())


def auth_headers(
    caller: Caller, favour: Role | None = None
) -> st.SearchStrategy[tuple[dict[str, str], set[str]]]:
    """Mostly (4 in 5) a valid token of some role (half of them `favour`, if given); else no token, a
    junk token or a leaked-looking secret."""
    roles = sorted(caller.headers) + [str(favour)] * (len(caller.headers) if favour else 0)
    valid = st.sampled_from(roles).map(lambda r: (dict(caller.headers[r]), set[str]()))
    junk = st.one_of(
        st.just(({}, set[str]())),
        any_text.filter(lambda s: "\n" not in s and "\r" not in s).map(
            lambda s: ({"Authorization": "Bearer " + s}, {s})
        ),
        st.sampled_from(sorted(SECRETS.items())).map(lambda kv: ({kv[0]: kv[1]}, {kv[1]})),
    )
    # one_of() would not weight repeated branches: draw the choice explicitly.
    return st.integers(0, 4).flatmap(lambda n: junk if n == 0 else valid)


def extra_headers() -> st.SearchStrategy[tuple[dict[str, str], set[str]]]:
    """Headers the app reads besides Authorization: X-Forwarded-For (goes to the audit, never back)."""
    return st.one_of(
        st.just(({}, set[str]())),
        canary_text.map(lambda s: ({"X-Forwarded-For": s}, {s})),
    )


def invoke(clinical: Clinical, name: str, request: func.HttpRequest) -> func.HttpResponse:
    fn = clinical.driver.get(name)
    user_function = fn.get_user_function()
    kwargs: dict[str, object] = {fn.get_trigger().name: request}
    if "context" in inspect.signature(user_function).parameters:
        kwargs["context"] = InvocationContext(name)
    response = user_function(**kwargs)
    assert isinstance(response, func.HttpResponse)
    return response


def request(
    method: str,
    url_path: str,
    *,
    headers: Mapping[str, str],
    route_params: Mapping[str, str],
    body: bytes = b"",
) -> func.HttpRequest:
    return func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/api/{url_path}",
        headers=dict(headers),
        params={},
        route_params=dict(route_params),
        body=body,
    )


def check(response: func.HttpResponse, planted: set[str], allowed: set[str], statuses: Counter[int]) -> None:
    statuses[response.status_code] += 1
    assert_not_server_error(response)
    assert_problem_shape(response)
    assert_no_echo(planted, response, allowed=allowed)


def run_property(test: Callable[[], None], statuses: Counter[int], expect: set[int]) -> None:
    test()
    assert sum(statuses.values()) >= EXAMPLES, f"only {sum(statuses.values())} examples ran"
    missing = expect - set(statuses)
    assert not missing, f"the fuzzer never reached status {sorted(missing)}: {dict(statuses)}"


def ids(existing: list[str]) -> st.SearchStrategy[tuple[str, set[str]]]:
    """A route id: an existing one, a random uuid, or anything at all (planted unless it is ours)."""
    choices = [
        st.sampled_from(existing).map(lambda i: (i, set[str]())),
        st.uuids().map(lambda u: (str(u), set[str]())),
        st.uuids().map(lambda u: (str(u).upper(), set[str]())),
        st.one_of(any_text, canary_text).map(lambda s: (s, {s})),
    ]
    # Half existing ids: one_of() would not weight a repeated branch, so draw the choice explicitly.
    return st.integers(0, 5).flatmap(lambda n: choices[max(0, n - 2)])


# ------------------------------------------------------------------------------------------- tests
def test_fuzz_health(clinical: Clinical) -> None:
    statuses: Counter[int] = Counter()

    @FUZZ_SETTINGS
    @given(
        body=st.binary(max_size=200) | canary_text.map(str.encode),
        params=st.dictionaries(any_text, any_text, max_size=3),
    )
    def prop(body: bytes, params: dict[str, str]) -> None:
        req = func.HttpRequest(
            method="GET", url="http://localhost:7071/api/health", headers={}, params=params, body=body
        )
        response = invoke(clinical, "health", req)
        assert response.status_code == 200
        check(response, words_in(body) | set(params) | set(params.values()), set(), statuses)

    run_property(prop, statuses, {200})


def test_fuzz_create_patient(clinical: Clinical) -> None:
    caller = Caller(clinical)
    statuses: Counter[int] = Counter()
    content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""])

    @FUZZ_SETTINGS
    @given(
        body=json_bodies(patient_create_body(mrn="MRN" + uuid.uuid4().hex[:9].upper())),
        auth=auth_headers(caller),
        extra=extra_headers(),
        content_type=content_types,
    )
    def prop(
        body: Fuzzed,
        auth: tuple[dict[str, str], set[str]],
        extra: tuple[dict[str, str], set[str]],
        content_type: str,
    ) -> None:
        headers = {**auth[0], **extra[0], "Content-Type": content_type}
        response = invoke(
            clinical,
            "patients_create",
            request("POST", "patients", headers=headers, route_params={}, body=body.body),
        )
        check(response, body.planted | auth[1] | extra[1], set(), statuses)
        if response.status_code == 201:
            assert set(json.loads(response.get_body())) == {"id"}

    run_property(prop, statuses, {201, 400, 401, 403})


def test_fuzz_read_patient(clinical: Clinical) -> None:
    caller = Caller(clinical)
    existing = [clinical.create_patient() for _ in range(3)]
    statuses: Counter[int] = Counter()

    @FUZZ_SETTINGS
    @given(patient=ids(existing), auth=auth_headers(caller), extra=extra_headers())
    def prop(
        patient: tuple[str, set[str]],
        auth: tuple[dict[str, str], set[str]],
        extra: tuple[dict[str, str], set[str]],
    ) -> None:
        headers = {**auth[0], **extra[0]}
        req = request("GET", "patients/x", headers=headers, route_params={"id": patient[0]})
        response = invoke(clinical, "patients_read", req)
        check(response, patient[1] | auth[1] | extra[1], set(existing), statuses)

    run_property(prop, statuses, {200, 401, 403, 404})


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, str, set[str]]:
    """An upload body and declared type: valid documents, signature mismatches, junk, canary text."""
    kind = draw(st.sampled_from(["pdf", "png", "text", "junk", "mismatch", "big"]))
    if kind == "pdf":
        body = PDF + draw(st.binary(max_size=200))
        ctype = "application/pdf"
    elif kind == "png":
        body = b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=200))
        ctype = "image/png"
    elif kind == "text":
        body = draw(st.one_of(any_text, canary_text)).encode("utf-8", errors="surrogatepass")
        ctype = draw(
            st.sampled_from(["text/plain", "text/plain; charset=utf-8", "text/plain; charset=latin-1"])
        )
    elif kind == "junk":
        body = draw(st.binary(max_size=500))
        ctype = draw(st.sampled_from(["application/pdf", "image/jpeg", "image/png", "text/plain"]))
    elif kind == "mismatch":
        body = draw(st.sampled_from([PDF, b"\xff\xd8\xff\xe0" + b"0" * 64, b"MZ\x90\x00"]))
        ctype = draw(
            st.one_of(any_text, canary_text, st.sampled_from(["application/x-msdownload", "text/html"]))
        )
    else:
        body = b"%PDF-" + b"0" * draw(st.integers(4_100, 40_000))
        ctype = "application/pdf"
    planted = words_in(body) if kind in ("text", "junk") else set()
    if kind == "mismatch":
        planted.add(ctype)
    return body, ctype, planted


def test_fuzz_upload_document(clinical: Clinical, app_env: Callable[..., None]) -> None:
    app_env(DOCUMENT_MAX_BYTES="4096")
    caller = Caller(clinical)
    existing = [clinical.create_patient() for _ in range(2)]
    statuses: Counter[int] = Counter()

    @FUZZ_SETTINGS
    @given(patient=ids(existing), doc=documents(), auth=auth_headers(caller), extra=extra_headers())
    def prop(
        patient: tuple[str, set[str]],
        doc: tuple[bytes, str, set[str]],
        auth: tuple[dict[str, str], set[str]],
        extra: tuple[dict[str, str], set[str]],
    ) -> None:
        body, ctype, planted = doc
        headers = {**auth[0], **extra[0], "Content-Type": ctype}
        req = request(
            "POST", "patients/x/documents", headers=headers, route_params={"id": patient[0]}, body=body
        )
        response = invoke(clinical, "documents_upload", req)
        check(response, planted | patient[1] | auth[1] | extra[1], set(existing), statuses)

    run_property(prop, statuses, {202, 401, 403, 404, 413, 415})


def test_fuzz_download_document(clinical: Clinical) -> None:
    caller = Caller(clinical)
    patient_id = clinical.create_patient()
    other_patient = clinical.create_patient()
    uploaded = clinical.upload(patient_id)
    assert uploaded.status_code == 202
    document_id = json.loads(uploaded.get_body())["documentId"]
    statuses: Counter[int] = Counter()
    allowed = {patient_id, other_patient, document_id}

    @FUZZ_SETTINGS
    @given(
        patient=ids([patient_id, patient_id, other_patient]),
        doc=ids([document_id]),
        auth=auth_headers(caller, favour=Role.CLINICIAN),
        extra=extra_headers(),
    )
    def prop(
        patient: tuple[str, set[str]],
        doc: tuple[str, set[str]],
        auth: tuple[dict[str, str], set[str]],
        extra: tuple[dict[str, str], set[str]],
    ) -> None:
        headers = {**auth[0], **extra[0]}
        req = request(
            "GET", "patients/x/documents/y", headers=headers, route_params={"id": patient[0], "docId": doc[0]}
        )
        response = invoke(clinical, "documents_download", req)
        check(response, patient[1] | doc[1] | auth[1] | extra[1], allowed, statuses)
        if response.status_code == 200:
            assert response.get_body() == PDF

    run_property(prop, statuses, {200, 401, 403, 404})


def test_the_oracles_can_fail() -> None:
    """The checks above must be able to fail: an echoing 400 and a bare 500 are both caught."""
    echo = func.HttpResponse(
        json.dumps({"code": "bad_request", "detail": "Zebulon Quartermaine"}),
        status_code=400,
        mimetype="application/problem+json",
    )
    with pytest.raises(AssertionError, match="echoed"):
        assert_no_echo({"Zebulon Quartermaine"}, echo)
    with pytest.raises(AssertionError):
        assert_problem_shape(echo)
    with pytest.raises(AssertionError, match="server error"):
        assert_not_server_error(func.HttpResponse('{"code":"internal_error"}', status_code=500))
    assert_no_echo({"validation_failed"}, echo)  # the app's own vocabulary is not an echo
