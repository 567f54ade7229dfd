"""The hostile token corpus (tests/security/token_corpus.py) against every registered PHI route.

Routes are discovered from the index (functions carrying `phi_permission`), so a new PHI route is
covered without editing this file. The data layer is replaced by a tripwire: a refused request must
be refused before any lookup.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.roles import Permission
from tests.conftest import FunctionDriver, indexed_functions
from tests.fixtures.oidc import OidcServer
from tests.security.token_corpus import CORPUS, Attack, attack_ids


def _phi_routes() -> list[tuple[str, str, Permission]]:
    import function_app

    routes = []
    for fn in indexed_functions(function_app.app):
        permission = getattr(fn.get_user_function(), "phi_permission", None)
        if permission is None:
            continue
        trigger = fn.get_trigger()
        method = str(getattr(trigger.methods[0], "value", trigger.methods[0]))
        route = str(trigger.route).replace("{id}", str(uuid.uuid4())).replace("{docId}", str(uuid.uuid4()))
        routes.append((method, route, permission))
    return routes


ROUTES = _phi_routes()


def test_every_workload_route_is_a_phi_route() -> None:
    assert len(ROUTES) == 4
    assert {r[2].name for r in ROUTES} == {
        "patients.create",
        "patients.read",
        "documents.upload",
        "documents.download",
    }


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions.documents
    import functions.patients

    def touched(*_: Any) -> Any:
        raise AssertionError("the data layer was reached by a refused request")

    for module in (functions.patients, functions.documents):
        for name in ("get_repositories", "get_document_store", "get_safe_harbor"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, touched)


@pytest.mark.usefixtures("tripwire")
@pytest.mark.parametrize(
    ("method", "route", "permission"), ROUTES, ids=[f"{m} {p.name}" for m, _, p in ROUTES]
)
@pytest.mark.parametrize("attack", CORPUS, ids=attack_ids(CORPUS))
def test_attack_is_refused_on_every_phi_route(
    attack: Attack, method: str, route: str, permission: Permission, oidc: OidcServer, driver: FunctionDriver
) -> None:
    request = attack.build(oidc)
    response = driver.http(
        method, route, headers={**request.headers, "Content-Type": "application/json"}, params=request.params,
        body=b'{"mrn": "MRN123456789"}' if method == "POST" else b"",
    )  # fmt: skip
    assert response.status_code == attack.status
    body = json.loads(response.get_body())
    assert set(body) == {"type", "title", "status", "code", "correlationId"}
    assert body["code"] == ("invalid_token" if attack.status == 401 else "insufficient_scope")
    assert b"MRN123456789" not in response.get_body()
