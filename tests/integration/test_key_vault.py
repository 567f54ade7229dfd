"""Key Vault secrets through the REAL `SecretClient`, against a loopback HTTPS DOUBLE of Key Vault.

No Key Vault emulator exists, so `VaultDouble` plays the secrets endpoint: HTTPS on 127.0.0.1 with a
certificate from a throw-away CA (trustme), `GET /secrets/{name}/` returning the secret bundle JSON,
and the bearer challenge flow the SDK expects: an unauthenticated request gets 401 with
`WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`,
then the SDK asks the credential for a token for that resource and retries with it.

The SDK checks that the challenge's resource domain matches the vault's host; a loopback address can
never match `vault.azure.net`, so these tests pass `verify_challenge_resource=False`. Production code
never does (asserted below).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.core.credentials import AccessToken

from shared.config import SettingsError, load_settings
from shared.errors import DependencyUnavailable
from shared.secrets import KeyVaultSecrets, LocalSecrets, build_secret_client, build_secrets
from tests.conftest import BASE_TEST_ENV

pytestmark = pytest.mark.integration

TENANT = str(uuid.uuid4())
SECRET_VALUE = "kv-secret-" + uuid.uuid4().hex  # synthetic, generated per run


class VaultDouble:
    def __init__(self, ca: trustme.CA) -> None:
        self.secrets: dict[str, tuple[str, str]] = {}
        self.requests: list[dict[str, Any]] = []
        self.token = "access-token-" + uuid.uuid4().hex
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                double.requests.append({"path": self.path, "auth": auth})
                if auth is None:
                    self._send(
                        401,
                        {"error": {"code": "Unauthorized"}},
                        {
                            "WWW-Authenticate": (
                                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                                'resource="https://vault.azure.net"'
                            )
                        },
                    )
                    return
                if auth != f"Bearer {double.token}":
                    self._send(401, {"error": {"code": "Unauthorized"}})
                    return
                name = self.path.split("?")[0].strip("/").split("/")[1]
                if name not in double.secrets:
                    self._send(404, {"error": {"code": "SecretNotFound", "message": "not found"}})
                    return
                value, version = double.secrets[name]
                host = f"https://127.0.0.1:{double.port}"
                self._send(
                    200,
                    {
                        "value": value,
                        "id": f"{host}/secrets/{name}/{version}",
                        "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000},
                    },
                )

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def secret_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["auth"] is not None]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Credential:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(self.token, 4102444800)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ca_path(tmp_path: Path) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))  # the public CA certificate only
    return ca, str(path)


@pytest.fixture
def vault(ca_path: tuple[trustme.CA, str]) -> Iterator[VaultDouble]:
    double = VaultDouble(ca_path[0])
    double.secrets["pseudonym-key"] = (SECRET_VALUE, "0f" * 16)
    yield double
    double.stop()


def _provider(
    vault: VaultDouble, ca: str, clock: Clock, ttl: float = 100.0
) -> tuple[KeyVaultSecrets, Credential]:
    credential = Credential(vault.token)
    client = build_secret_client(
        vault.uri,
        credential,
        connection_verify=ca,
        verify_challenge_resource=False,
        retry_total=0,  # type: ignore[arg-type]
    )
    return KeyVaultSecrets(client, ttl, clock=clock), credential


def test_challenge_flow_then_the_secret(vault: VaultDouble, ca_path: tuple[trustme.CA, str]) -> None:
    provider, credential = _provider(vault, ca_path[1], Clock())
    secret = provider.get("pseudonym-key")
    assert secret.value == SECRET_VALUE and secret.version == "0f" * 16
    assert vault.requests[0]["auth"] is None  # the challenge request carries no token
    assert vault.requests[1]["auth"] == f"Bearer {vault.token}"
    assert vault.requests[1]["path"].startswith("/secrets/pseudonym-key")
    scopes, kwargs = credential.calls[0]
    assert scopes == ("https://vault.azure.net/.default",)
    assert kwargs.get("tenant_id") == TENANT


def test_values_are_cached_within_the_ttl(vault: VaultDouble, ca_path: tuple[trustme.CA, str]) -> None:
    clock = Clock()
    provider, _ = _provider(vault, ca_path[1], clock)
    provider.get("pseudonym-key")
    clock.now += 79  # before the refresh-ahead window (80% of 100 s)
    provider.get("pseudonym-key")
    assert len(vault.secret_requests()) == 1


def test_refresh_ahead_of_expiry_picks_up_a_rotation(
    vault: VaultDouble, ca_path: tuple[trustme.CA, str]
) -> None:
    clock = Clock()
    provider, _ = _provider(vault, ca_path[1], clock)
    assert provider.get("pseudonym-key").version == "0f" * 16
    vault.secrets["pseudonym-key"] = ("rotated-" + uuid.uuid4().hex, "1a" * 16)
    clock.now += 81  # inside the refresh-ahead window, before expiry
    rotated = provider.get("pseudonym-key")
    assert rotated.version == "1a" * 16 and rotated.value.startswith("rotated-")
    assert len(vault.secret_requests()) == 2


def test_outage_with_a_cached_value_serves_it_until_expiry(
    vault: VaultDouble, ca_path: tuple[trustme.CA, str]
) -> None:
    clock = Clock()
    provider, _ = _provider(vault, ca_path[1], clock)
    provider.get("pseudonym-key")
    vault.stop()
    clock.now += 90  # refresh attempt fails: the cached value is still valid
    assert provider.get("pseudonym-key").value == SECRET_VALUE
    clock.now += 20  # past the TTL: fail closed
    with pytest.raises(DependencyUnavailable) as caught:
        provider.get("pseudonym-key")
    assert caught.value.status == 503 and caught.value.dependency == "key_vault"


def test_outage_without_a_cached_value_fails_closed(
    vault: VaultDouble, ca_path: tuple[trustme.CA, str]
) -> None:
    provider, _ = _provider(vault, ca_path[1], Clock())
    vault.stop()
    with pytest.raises(DependencyUnavailable) as caught:
        provider.get("pseudonym-key")
    assert caught.value.status == 503
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_a_missing_secret_fails_closed(vault: VaultDouble, ca_path: tuple[trustme.CA, str]) -> None:
    provider, _ = _provider(vault, ca_path[1], Clock())
    with pytest.raises(DependencyUnavailable):
        provider.get("not-provisioned")


def test_an_untrusted_certificate_is_refused(vault: VaultDouble) -> None:
    credential = Credential(vault.token)
    client = build_secret_client(vault.uri, credential, verify_challenge_resource=False, retry_total=0)  # type: ignore[arg-type]
    with pytest.raises(DependencyUnavailable):
        KeyVaultSecrets(client, 100).get("pseudonym-key")


def test_no_secret_value_is_logged(
    vault: VaultDouble, ca_path: tuple[trustme.CA, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    provider, _ = _provider(vault, ca_path[1], clock)
    secret = provider.get("pseudonym-key")
    vault.stop()
    clock.now += 90
    provider.get("pseudonym-key")
    clock.now += 20
    with pytest.raises(DependencyUnavailable) as caught:
        provider.get("pseudonym-key")
    assert caplog.records, "the test must see the SDK's and our log records"
    everything = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert SECRET_VALUE not in everything
    assert SECRET_VALUE not in repr(secret) + str(secret) + repr(caught.value)


def test_settings_wiring(vault: VaultDouble, ca_path: tuple[trustme.CA, str]) -> None:
    settings = load_settings({**BASE_TEST_ENV, "KEY_VAULT_URI": vault.uri})
    credential = Credential(vault.token)
    provider = build_secrets(
        settings,
        lambda: credential,
        connection_verify=ca_path[1],
        verify_challenge_resource=False,  # type: ignore[arg-type,return-value]
    )
    assert isinstance(provider, KeyVaultSecrets)
    assert provider.get("pseudonym-key").value == SECRET_VALUE


def test_production_client_keeps_challenge_resource_verification() -> None:
    client = build_secret_client("https://kv-example.vault.azure.net", Credential("t"))  # type: ignore[arg-type]
    policies = client._client._client._pipeline._impl_policies  # SDK internals: the auth policy
    auth = [p for p in policies if type(p).__name__ == "ChallengeAuthPolicy"]
    assert auth and auth[0]._verify_challenge_resource is True


def test_local_secrets_only_in_development() -> None:
    settings = load_settings(BASE_TEST_ENV)
    assert isinstance(build_secrets(settings, lambda: pytest.fail("no credential")), LocalSecrets)
    production = dataclasses.replace(settings, environment="Production")
    with pytest.raises(SettingsError):
        build_secrets(production, lambda: pytest.fail("no credential"))
