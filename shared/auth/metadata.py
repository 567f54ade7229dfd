"""OIDC discovery: `{authority}/.well-known/openid-configuration` gives the `issuer` and `jwks_uri`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.auth.fetch import FetchError, fetch_json, is_allowed_url

_MAX_ISSUER_LENGTH = 512

JsonFetcher = Callable[[str, float], dict[str, Any]]


@dataclass(frozen=True)
class OidcMetadata:
    issuer: str
    jwks_uri: str


def discovery_url(authority: str) -> str:
    return authority.rstrip("/") + "/.well-known/openid-configuration"


def parse_metadata(document: dict[str, Any]) -> OidcMetadata:
    issuer = document.get("issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(issuer, str) or not 0 < len(issuer) <= _MAX_ISSUER_LENGTH:
        raise FetchError("invalid_metadata")
    # The JWKS decides which keys we trust: it must come over TLS (or loopback in tests).
    if not isinstance(jwks_uri, str) or not is_allowed_url(jwks_uri):
        raise FetchError("invalid_metadata")
    return OidcMetadata(issuer=issuer, jwks_uri=jwks_uri)


def fetch_metadata(authority: str, timeout: float, fetch: JsonFetcher = fetch_json) -> OidcMetadata:
    return parse_metadata(fetch(discovery_url(authority), timeout))
