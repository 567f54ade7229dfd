"""Signing keys from the identity provider's JWKS, cached with last-known-good and throttled refresh.

Why not `jwt.PyJWKClient`: a failed fetch empties its cache (one JWKS blip fails every request), and
it refetches on every unknown `kid` (a kid-spray turns each bad token into an outbound request). Here:

- keys are kept `cache_seconds` (12-24 h), then refreshed; if that refresh fails the last-known-good
  keys stay in use (Entra publishes new keys long before signing with them);
- an unknown `kid` forces a refresh at most once per `refresh_min_interval` (>= 5 min), process-wide;
- after a failed fetch no other fetch is tried for `FAILURE_BACKOFF_SECONDS`, so a dead endpoint
  costs one timeout, not one per request;
- with no keys at all and no reachable endpoint, `DependencyUnavailable("jwks")` (503): fail closed.

Only `use=sig` RSA keys of at least 2048 bits are kept, each bound to RS256.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from jwt.exceptions import PyJWKError, PyJWTError

from shared.auth.fetch import FetchError, fetch_json
from shared.auth.metadata import JsonFetcher, OidcMetadata, fetch_metadata
from shared.errors import DependencyUnavailable
from shared.scrub import safe, safe_reason

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 128
FAILURE_BACKOFF_SECONDS = 10.0

Clock = Callable[[], float]


def parse_jwks(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS, by `kid`. Anything odd about a key drops that key only."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise FetchError("invalid_jwks")
    keys: dict[str, PyJWK] = {}
    ambiguous: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
            continue
        if entry.get("use") != "sig" or entry.get("kty") != "RSA" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            jwk = PyJWK(entry, algorithm=ALGORITHM)
        except (PyJWKError, PyJWTError, ValueError, TypeError, KeyError):
            continue
        if not isinstance(jwk.key, RSAPublicKey) or jwk.key.key_size < MIN_RSA_BITS:
            continue
        if kid in keys:
            ambiguous.add(kid)  # two keys under one kid: trust neither
        keys[kid] = jwk
    for kid in ambiguous:
        del keys[kid]
    return keys


@dataclass(frozen=True)
class KeySnapshot:
    """What one successful refresh produced. Replaced whole, so readers never need the lock."""

    issuer: str
    keys: Mapping[str, PyJWK]
    fetched_at: float


class SigningKeyCache:
    def __init__(
        self,
        authority: str,
        *,
        timeout_seconds: float,
        cache_seconds: float,
        refresh_min_interval_seconds: float,
        clock: Clock = time.monotonic,
        fetch: JsonFetcher = fetch_json,
    ) -> None:
        self._authority = authority
        self._timeout = timeout_seconds
        self._ttl = cache_seconds
        self._min_interval = refresh_min_interval_seconds
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self._snapshot: KeySnapshot | None = None
        self._last_forced = -math.inf
        self._last_failure = -math.inf
        self.fetch_attempts = 0  # observable by tests and metrics; never reset

    def lookup(self, kid: str) -> tuple[str, PyJWK | None]:
        """The metadata issuer and the key for `kid` (None if unknown even after an allowed refresh)."""
        snapshot = self._snapshot
        if snapshot is None or self._clock() - snapshot.fetched_at >= self._ttl:
            snapshot = self._refresh(forced=False, seen=snapshot)
            if snapshot is None:
                raise DependencyUnavailable("jwks")
            # Just refreshed (or refresh failed): forcing another fetch now would gain nothing.
            return snapshot.issuer, snapshot.keys.get(kid)
        key = snapshot.keys.get(kid)
        if key is None:
            refreshed = self._refresh(forced=True, seen=snapshot)
            if refreshed is not None:
                snapshot = refreshed
            key = snapshot.keys.get(kid)
        return snapshot.issuer, key

    def _refresh(self, *, forced: bool, seen: KeySnapshot | None) -> KeySnapshot | None:
        with self._lock:
            current = self._snapshot
            if current is not seen:
                return current  # another thread refreshed while we waited for the lock
            now = self._clock()
            if now - self._last_failure < FAILURE_BACKOFF_SECONDS:
                return current
            if forced:
                if now - self._last_forced < self._min_interval:
                    return current
                self._last_forced = now
            self.fetch_attempts += 1
            try:
                metadata = fetch_metadata(self._authority, self._timeout, self._fetch)
                keys = self._fetch_keys(metadata)
            except FetchError as exc:
                self._last_failure = now
                logger.warning(
                    "OIDC key refresh failed (%s); %s",
                    safe(safe_reason(str(exc.args[0])) if exc.args else "error"),  # code pattern only
                    safe("keeping last-known-good keys" if current is not None else "no keys available"),
                )
                return current
            snapshot = KeySnapshot(issuer=metadata.issuer, keys=MappingProxyType(keys), fetched_at=now)
            self._snapshot = snapshot
            return snapshot

    def _fetch_keys(self, metadata: OidcMetadata) -> dict[str, PyJWK]:
        keys = parse_jwks(self._fetch(metadata.jwks_uri, self._timeout))
        if not keys:
            # An empty key set is far more likely a broken endpoint than a real rotation to nothing.
            raise FetchError("no_usable_keys")
        return keys
