"""Helpers for the validator / key-cache unit tests: settings built directly, and a hand-driven clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.auth.validator import TokenValidator
from tests.fixtures.oidc import FakeClock, OidcServer, identity_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_validator(oidc_server: OidcServer, clock: FakeClock) -> Callable[..., TokenValidator]:
    def make(**changes: Any) -> TokenValidator:
        return TokenValidator.from_settings(identity_settings(oidc_server, **changes), clock=clock)

    return make
