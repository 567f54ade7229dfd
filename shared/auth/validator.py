"""Validate an Entra ID (v2) access token and turn it into a `Principal`.

Rules (docs/authorization.md): RS256 only (pinned here, never read from the token); `kid` required
and resolved only against the provider's JWKS; `exp nbf iat iss aud tid ver` required; small leeway;
`aud` exactly our client id (or the `api://` App ID URI, only if configured); `iss` exactly the
metadata issuer for the token's `tid`, which must be a GUID on the allow-list; `ver == "2.0"`; `scp`
or `roles` present; guests rejected unless allowed; calling app on the allow-list if one is set; any
`crit` header rejected.

Every failure is `TokenRejected` (401, one public code). Nothing here logs the token or its claims.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)
from jwt.types import Options

from shared.auth.fetch import fetch_json
from shared.auth.jwks import ALGORITHM, MAX_KID_LENGTH, Clock, SigningKeyCache
from shared.auth.metadata import JsonFetcher
from shared.auth.rejected import TokenRejected
from shared.config import GUID_RE, IdentitySettings, get_settings
from shared.principal import Principal

ALGORITHMS = [ALGORITHM]
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "tid", "ver"]
TOKEN_VERSION = "2.0"  # noqa: S105 - the `ver` claim value, not a secret
TENANT_PLACEHOLDER = "{tenantid}"
_MAX_SCOPES = 64
_MAX_ROLES = 64


class TokenValidator:
    def __init__(self, settings: IdentitySettings, keys: SigningKeyCache) -> None:
        self._keys = keys
        self._home_tenant = settings.tenant_id.lower()
        self._tenants = frozenset((self._home_tenant, *settings.allowed_tenants))
        audiences = [settings.audience]
        if settings.app_id_uri:
            audiences.append(settings.app_id_uri)
        self._audiences = tuple(audiences)
        self._clients = frozenset(settings.allowed_client_apps)
        self._allow_guests = settings.allow_guests
        self._leeway = settings.leeway_seconds
        self._options: Options = {"require": REQUIRED_CLAIMS, "verify_signature": True}
        # (metadata issuer, issuer by tenant, all issuers): swapped as one tuple so threads never
        # see a half-updated pair.
        self._issuer_state: tuple[str, Mapping[str, str], frozenset[str]] = ("", {}, frozenset())

    @classmethod
    def from_settings(
        cls, settings: IdentitySettings, *, clock: Clock = time.monotonic, fetch: JsonFetcher = fetch_json
    ) -> TokenValidator:
        keys = SigningKeyCache(
            settings.authority,
            timeout_seconds=settings.http_timeout_seconds,
            cache_seconds=settings.jwks_cache_seconds,
            refresh_min_interval_seconds=settings.jwks_refresh_min_interval_seconds,
            clock=clock,
            fetch=fetch,
        )
        return cls(settings, keys)

    @property
    def keys(self) -> SigningKeyCache:
        return self._keys

    def validate(self, token: str) -> Principal:
        kid = self._kid(token)
        issuer_template, key = self._keys.lookup(kid)  # may raise DependencyUnavailable (503)
        if key is None:
            raise TokenRejected("unknown_kid")
        issuer_by_tenant, issuers = self._issuers_for(issuer_template)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audiences,
                issuer=issuers,
                leeway=self._leeway,
                options=self._options,
            )
        except ExpiredSignatureError:
            raise TokenRejected("expired") from None
        except ImmatureSignatureError:
            raise TokenRejected("not_yet_valid") from None
        except InvalidAudienceError:
            raise TokenRejected("audience") from None
        except InvalidIssuerError:
            raise TokenRejected("issuer") from None
        except MissingRequiredClaimError:
            raise TokenRejected("missing_claim") from None
        except InvalidSignatureError:
            raise TokenRejected("signature") from None
        except InvalidAlgorithmError:
            raise TokenRejected("algorithm") from None
        except PyJWTError:
            raise TokenRejected("malformed") from None
        return self._principal(claims, issuer_by_tenant)

    # -------------------------------------------------------------------------------- before crypto
    @staticmethod
    def _kid(token: str) -> str:
        # Parsed here rather than by PyJWT so every header rule is ours and runs before any key lookup.
        try:
            segment = token.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error, RecursionError):
            raise TokenRejected("malformed") from None
        if not isinstance(header, dict):
            raise TokenRejected("malformed")
        if "crit" in header:
            # We implement no JWS extensions, so no critical one can be honoured (RFC 7515 4.1.11).
            raise TokenRejected("crit")
        if header.get("alg") != ALGORITHM:
            raise TokenRejected("algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
            raise TokenRejected("kid")
        return kid

    def _issuers_for(self, template: str) -> tuple[Mapping[str, str], frozenset[str]]:
        cached_template, cached_by_tenant, cached_issuers = self._issuer_state
        if template == cached_template:
            return cached_by_tenant, cached_issuers
        # Entra's tenant-specific metadata names the tenant's GUID in `issuer`; the multi-tenant
        # ("organizations"/"common") metadata has a literal {tenantid}. Either way, the issuer a
        # token may carry is that string with *its own* allow-listed tid substituted, exactly.
        if TENANT_PLACEHOLDER in template:
            pattern = template
        elif self._home_tenant in template.lower():
            start = template.lower().index(self._home_tenant)
            pattern = template[:start] + TENANT_PLACEHOLDER + template[start + len(self._home_tenant) :]
        else:
            pattern = ""
        if pattern:
            by_tenant = {t: pattern.replace(TENANT_PLACEHOLDER, t) for t in self._tenants}
        else:
            by_tenant = {self._home_tenant: template}
        issuers = frozenset(by_tenant.values())
        self._issuer_state = (template, by_tenant, issuers)
        return by_tenant, issuers

    # --------------------------------------------------------------------------------- after crypto
    def _principal(self, claims: dict[str, Any], issuer_by_tenant: Mapping[str, str]) -> Principal:
        tid = claims.get("tid")
        if not isinstance(tid, str) or not GUID_RE.match(tid) or tid not in issuer_by_tenant:
            raise TokenRejected("tenant")
        if claims.get("iss") != issuer_by_tenant[tid]:
            raise TokenRejected("issuer")
        if claims.get("ver") != TOKEN_VERSION:
            raise TokenRejected("version")
        if not isinstance(claims.get("aud"), str):
            raise TokenRejected("audience")  # one audience, exactly ours; no lists
        if not self._allow_guests and self._is_guest(claims, tid):
            raise TokenRejected("guest")
        client = claims.get("azp", claims.get("appid"))
        if not isinstance(client, str) or not GUID_RE.match(client):  # the calling app's application id
            raise TokenRejected("client")
        if self._clients and client not in self._clients:
            raise TokenRejected("client")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not GUID_RE.match(oid):
            raise TokenRejected("subject")
        scopes = self._scopes(claims.get("scp"))
        roles = self._roles(claims.get("roles"))
        if not scopes and not roles:
            raise TokenRejected("no_permissions")
        return Principal(oid=oid, tid=tid, azp=client, scopes=scopes, roles=roles)

    @staticmethod
    def _is_guest(claims: Mapping[str, Any], tid: str) -> bool:
        # `acct` (optional claim): 0 member, 1 guest. `idp`: present when the user signed in with
        # another identity provider (a B2B guest's home tenant, a Microsoft account, ...). App-only
        # tokens may carry idp = this tenant's own v1 issuer, which is not a guest.
        if claims.get("acct") not in (None, 0):
            return True
        idp = claims.get("idp")
        if idp is None:
            return False
        own = {claims.get("iss"), f"https://sts.windows.net/{tid}/"}
        return idp not in own

    @staticmethod
    def _scopes(raw: object) -> frozenset[str]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, str):
            raise TokenRejected("malformed")
        scopes = raw.split()
        if len(scopes) > _MAX_SCOPES:
            raise TokenRejected("malformed")
        return frozenset(scopes)

    @staticmethod
    def _roles(raw: object) -> frozenset[str]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or len(raw) > _MAX_ROLES or not all(isinstance(r, str) for r in raw):
            raise TokenRejected("malformed")
        return frozenset(raw)


@lru_cache(maxsize=1)
def get_token_validator() -> TokenValidator:
    """The process-wide validator (and its key cache), built from settings on first use."""
    return TokenValidator.from_settings(get_settings().identity)
