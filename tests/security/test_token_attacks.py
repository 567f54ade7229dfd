"""The hostile token corpus, run through real registered HTTP functions wrapped by `phi_route`.

The workload routes come later; here a throw-away FunctionApp (tests/fixtures/oidc.py) registers
probe routes for a user permission (read), a narrower user permission (download) and an app-only
permission (lab results), and the FunctionDriver invokes them the way the host would.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import FunctionDriver
from tests.fixtures.oidc import PROBE_CALLS, DenialRecorder, OidcServer
from tests.security.token_corpus import CORPUS, Attack, attack_ids

pytestmark = pytest.mark.security

PROBE_ROUTES = [
    ("GET", "probe/patients/{id}"),
    ("GET", "probe/documents/{id}"),
    ("POST", "probe/lab-results"),
]


@pytest.mark.parametrize(("method", "route"), PROBE_ROUTES, ids=["read", "download", "lab"])
@pytest.mark.parametrize("attack", CORPUS, ids=attack_ids(CORPUS))
def test_attack_is_refused_before_the_handler(
    attack: Attack,
    method: str,
    route: str,
    oidc: OidcServer,
    probe_driver: FunctionDriver,
    denials: DenialRecorder,
) -> None:
    request = attack.build(oidc)
    response = probe_driver.http(
        method, route.format(id=uuid.uuid4()), headers=request.headers, params=request.params
    )

    assert response.status_code == attack.status
    assert PROBE_CALLS.principals == [], "the handler must not run for a refused request"
    body = json.loads(response.get_body())
    assert response.mimetype == "application/problem+json"
    if attack.status == 401:
        assert body["code"] == "invalid_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert denials.denials == [(401, attack.reason)], "refused, but not for the reason under test"
    else:
        assert body["code"] == "insufficient_scope"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
        assert denials.denials == [(403, "insufficient_scope")]
    # No detail about why, and nothing of the request echoed back.
    assert set(body) == {"type", "title", "status", "code", "correlationId"}
    raw = response.get_body().decode()
    for value in [*request.headers.values(), *request.params.values()]:
        for part in value.replace(",", " ").split():
            if len(part) > 8:
                assert part not in raw


def test_corpus_covers_every_case_the_issue_lists() -> None:
    names = set(attack_ids(CORPUS))
    required = {
        "alg_none_unsigned",
        "hs256_with_public_key_bytes",
        "other_key_same_kid",
        "unknown_kid",
        "missing_kid",
        "expired",
        "nbf_in_future",
        "iat_in_future_beyond_leeway",
        "wrong_aud",
        "wrong_iss",
        "iss_partial_prefix",
        "wrong_tid",
        "non_guid_tid",
        "ver_1_0",
        "no_scp_no_roles",
        "wrong_scope",
        "crit_header",
        "tampered_payload",
        "scheme_lowercase",
        "scheme_double_space",
        "oversized_authorization_header",
        "token_in_query_access_token",
        "two_authorization_headers_joined",
    }
    assert required <= names, required - names
    assert len(names) == len(CORPUS), "duplicate attack names"


def test_each_attack_differs_from_a_valid_request_only_in_its_defect(
    oidc: OidcServer, probe_driver: FunctionDriver
) -> None:
    """Control: the same fixture's plain token is accepted on the read route, so 401s are earned."""
    response = probe_driver.http("GET", f"probe/patients/{uuid.uuid4()}", headers=oidc.bearer())
    assert response.status_code == 200
