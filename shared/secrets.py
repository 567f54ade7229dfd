"""Secrets from Key Vault, cached per process with a TTL and refreshed ahead of expiry.

- One `SecretClient` per process, on the process credential (`shared.identity`).
- Names are versionless, so a rotation is picked up at the next refresh.
- A fetch starts once a cached value is older than `refresh_ahead` of its TTL; if Key Vault is then
  unreachable the cached value is served until the TTL ends. With nothing (still) cached, the call
  fails closed with `DependencyUnavailable("key_vault")` (503).
- Secret values never reach logs or exceptions: errors carry the fixed dependency label only, and
  SDK exceptions are not chained (their text could include response bodies).
- Without `KEY_VAULT_URI`, local secrets (`LOCAL_SECRET_<NAME>`) are used, and only in Development.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from shared.config import Settings, SettingsError, get_settings
from shared.errors import DependencyUnavailable
from shared.identity import get_credential

logger = logging.getLogger(__name__)

REFRESH_AHEAD_FRACTION = 0.2
LOCAL_VERSION = "local"


@dataclass(frozen=True)
class Secret:
    name: str
    value: str = field(repr=False)
    version: str

    def __str__(self) -> str:
        return f"Secret({self.name}@{self.version})"


class SecretsProvider(Protocol):
    def get(self, name: str) -> Secret: ...


class LocalSecrets:
    """Development only: values from `LOCAL_SECRET_<NAME>` settings."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> Secret:
        try:
            return Secret(name, self._values[name], LOCAL_VERSION)
        except KeyError:
            raise DependencyUnavailable("key_vault", "secret_not_configured") from None


@dataclass
class _Entry:
    secret: Secret
    fetched_at: float


class KeyVaultSecrets:
    def __init__(
        self,
        client: SecretClient,
        ttl_seconds: float,
        *,
        refresh_ahead_fraction: float = REFRESH_AHEAD_FRACTION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._refresh_after = ttl_seconds * (1.0 - refresh_ahead_fraction)
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Secret:
        now = self._clock()
        entry = self._cache.get(name)
        if entry is not None and now - entry.fetched_at < self._refresh_after:
            return entry.secret
        with self._lock:
            entry = self._cache.get(name)
            now = self._clock()
            if entry is not None and now - entry.fetched_at < self._refresh_after:
                return entry.secret  # another thread refreshed it while we waited
            fetched = self._fetch(name)
            if fetched is not None:
                self._cache[name] = _Entry(fetched, now)
                return fetched
            if entry is not None and now - entry.fetched_at < self._ttl:
                logger.warning("Key Vault refresh failed; serving the cached secret until it expires")
                return entry.secret
            self._cache.pop(name, None)
            raise DependencyUnavailable("key_vault")

    def _fetch(self, name: str) -> Secret | None:
        try:
            kv = self._client.get_secret(name)
        except ResourceNotFoundError:
            logger.error("Key Vault secret is not provisioned", extra={"secret_name": name})
            return None
        except AzureError as exc:
            # The exception type is safe to log; its message may quote a response body.
            logger.warning("Key Vault is unreachable", extra={"error_type": type(exc).__name__})
            return None
        if kv.value is None or kv.properties.version is None:
            return None
        return Secret(name, kv.value, kv.properties.version)


def build_secret_client(vault_uri: str, credential: TokenCredential, **client_kwargs: Any) -> SecretClient:
    # Short, bounded SDK retries: an outage must turn into a 503 quickly, not hang the invocation.
    options: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 10}
    options.update(client_kwargs)
    return SecretClient(vault_url=vault_uri, credential=credential, **options)


def build_secrets(
    settings: Settings,
    credential_factory: Callable[[], TokenCredential] = get_credential,
    **client_kwargs: Any,
) -> SecretsProvider:
    uri = settings.secrets.key_vault_uri
    if uri is None:
        if not settings.is_development:
            # load_settings already refuses this; refuse again here so no code path can skip it.
            raise SettingsError("KEY_VAULT_URI", "is required outside Development")
        return LocalSecrets(settings.secrets.local_secrets)
    client = build_secret_client(uri, credential_factory(), **client_kwargs)
    return KeyVaultSecrets(client, settings.secrets.cache_ttl_seconds)


@lru_cache(maxsize=1)
def get_secrets() -> SecretsProvider:
    return build_secrets(get_settings())
