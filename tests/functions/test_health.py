from __future__ import annotations

import json

from tests.conftest import FunctionDriver


def test_health_is_anonymous_and_says_nothing_else(driver: FunctionDriver) -> None:
    response = driver.http("GET", "health")
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}
    assert response.mimetype == "application/json"
    assert response.headers.get("Cache-Control") == "no-store"


def test_health_route_is_get_only(driver: FunctionDriver) -> None:
    trigger = driver.get("health").get_trigger()
    assert [str(getattr(m, "value", m)) for m in trigger.methods] == ["GET"]
    assert str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() == "anonymous"
