"""The hostile token corpus: reusable against every PHI route.

Each `Attack` builds the request headers and query parameters from an `OidcServer` (the `oidc`
fixture) and says what the route must answer: 401, or 403 for a valid token that lacks the needed
scope/role on *every* route. Tokens are otherwise valid (right key, issuer, audience, tenant, scope and
all user roles), so each case fails for its one defect. `reason` is the `TokenRejected.reason` our
code must give (None for 403s), which lets the pipeline tests prove *why* a request was refused.

Usage on a workload route::

    @pytest.mark.parametrize("attack", CORPUS, ids=attack_ids(CORPUS))
    def test_route_refuses(attack, oidc, driver):
        req = attack.build(oidc)
        response = driver.http("GET", f"patients/{uuid4()}", headers=req.headers, params=req.params)
        assert response.status_code == attack.status
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fixtures.oidc import ALL_USER_ROLES, OidcServer, b64url, b64url_json


@dataclass(frozen=True)
class AttackRequest:
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[OidcServer], AttackRequest]
    status: int
    reason: str | None


def _header(value: str) -> AttackRequest:
    return AttackRequest(headers={"Authorization": value})


def _bearer(token: str) -> AttackRequest:
    return _header(f"Bearer {token}")


def _unsigned(o: OidcServer, header: dict[str, Any], signature: str = "") -> str:
    return f"{b64url_json(header)}.{b64url_json(o.claims())}.{signature}"


def _hs256_with_public_key(o: OidcServer) -> str:
    # The classic RS/HS confusion: HMAC keyed with the public key a verifier might feed to HS256.
    signing_input = (
        f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': o.signing.kid})}.{b64url_json(o.claims())}"
    )
    mac = hmac.new(o.signing.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _tampered(o: OidcServer) -> str:
    header, _, signature = o.token(roles=["Researcher"]).split(".")
    forged = o.claims()  # all roles: an elevation the signature does not cover
    return f"{header}.{b64url_json(forged)}.{signature}"


def _oversized(o: OidcServer) -> str:
    return o.token(pad="x" * 9000)


def _now() -> int:
    return int(time.time())


def _other_guid() -> str:
    return str(uuid.uuid4())


CORPUS: tuple[Attack, ...] = (
    # ---- where the token comes from
    Attack("no_authorization_header", lambda o: AttackRequest(), 401, "missing"),
    Attack(
        "token_in_query_access_token",
        lambda o: AttackRequest(params={"access_token": o.token()}),
        401,
        "query_token",
    ),
    Attack(
        "token_in_query_and_valid_header",
        lambda o: AttackRequest(headers=o.bearer(), params={"access_token": o.token()}),
        401,
        "query_token",
    ),
    Attack(
        "jwt_in_any_query_parameter", lambda o: AttackRequest(params={"q": o.token()}), 401, "query_token"
    ),
    Attack("oversized_authorization_header", lambda o: _bearer(_oversized(o)), 401, "oversized"),
    Attack(
        "two_authorization_headers_joined",
        lambda o: _header(f"Bearer {o.token()}, Bearer {o.token()}"),
        401,
        "shape",
    ),
    Attack(
        "two_headers_joined_no_space",
        lambda o: _header(f"Bearer {o.token()},Bearer {o.token()}"),
        401,
        "shape",
    ),
    Attack("scheme_lowercase", lambda o: _header(f"bearer {o.token()}"), 401, "scheme"),
    Attack("scheme_uppercase", lambda o: _header(f"BEARER {o.token()}"), 401, "scheme"),
    Attack("scheme_missing", lambda o: _header(o.token()), 401, "scheme"),
    Attack("scheme_basic", lambda o: _header("Basic dXNlcjpwYXNz"), 401, "scheme"),
    Attack("scheme_leading_space", lambda o: _header(f" Bearer {o.token()}"), 401, "scheme"),
    Attack("scheme_tab_separator", lambda o: _header(f"Bearer\t{o.token()}"), 401, "scheme"),
    Attack("scheme_double_space", lambda o: _header(f"Bearer  {o.token()}"), 401, "shape"),
    Attack("token_trailing_space", lambda o: _header(f"Bearer {o.token()} "), 401, "shape"),
    Attack("token_trailing_newline", lambda o: _header(f"Bearer {o.token()}\n"), 401, "shape"),
    Attack("empty_bearer", lambda o: _header("Bearer "), 401, "shape"),
    Attack("not_a_jwt", lambda o: _header("Bearer a.b.c"), 401, "malformed"),
    # ---- header / key attacks
    Attack(
        "alg_none_unsigned",
        lambda o: _bearer(_unsigned(o, {"alg": "none", "kid": o.signing.kid})),
        401,
        "shape",
    ),
    Attack(
        "alg_none_with_signature",
        lambda o: _bearer(_unsigned(o, {"alg": "none", "kid": o.signing.kid}, "AAAA")),
        401,
        "algorithm",
    ),
    Attack("hs256_with_public_key_bytes", lambda o: _bearer(_hs256_with_public_key(o)), 401, "algorithm"),
    Attack(
        "rs512_header",
        lambda o: _bearer(_unsigned(o, {"alg": "RS512", "kid": o.signing.kid}, "AAAA")),
        401,
        "algorithm",
    ),
    Attack(
        "other_key_same_kid",
        lambda o: _bearer(o.token(key=o.attacker_key(kid=o.signing.kid))),
        401,
        "signature",
    ),
    Attack("unknown_kid", lambda o: _bearer(o.token(key=o.attacker_key())), 401, "unknown_kid"),
    Attack(
        "embedded_jwk_header",
        lambda o: _bearer(
            (k := o.attacker_key()) and o.token(key=k, headers={"jwk": k.public_jwk(), "jku": o.jwks_uri})
        ),
        401,
        "unknown_kid",
    ),
    Attack("missing_kid", lambda o: _bearer(o.sign(o.claims(), kid=False)), 401, "kid"),
    Attack("crit_header", lambda o: _bearer(o.token(headers={"crit": ["exp"], "exp": 1})), 401, "crit"),
    Attack("crit_b64_header", lambda o: _bearer(o.token(headers={"crit": ["b64"]})), 401, "crit"),
    Attack("tampered_payload", lambda o: _bearer(_tampered(o)), 401, "signature"),
    # ---- time
    Attack(
        "expired",
        lambda o: _bearer(o.token(exp=_now() - 3600, iat=_now() - 7200, nbf=_now() - 7200)),
        401,
        "expired",
    ),
    Attack("expired_beyond_leeway", lambda o: _bearer(o.token(exp=_now() - 90)), 401, "expired"),
    Attack("nbf_in_future", lambda o: _bearer(o.token(nbf=_now() + 3600)), 401, "not_yet_valid"),
    Attack(
        "iat_in_future_beyond_leeway", lambda o: _bearer(o.token(iat=_now() + 3600)), 401, "not_yet_valid"
    ),
    Attack("missing_exp", lambda o: _bearer(o.token(drop=["exp"])), 401, "missing_claim"),
    Attack("missing_nbf", lambda o: _bearer(o.token(drop=["nbf"])), 401, "missing_claim"),
    Attack("missing_iat", lambda o: _bearer(o.token(drop=["iat"])), 401, "missing_claim"),
    # ---- audience, issuer, tenant, version
    Attack("wrong_aud", lambda o: _bearer(o.token(aud=_other_guid())), 401, "audience"),
    Attack(
        "aud_list_including_ours",
        lambda o: _bearer(o.token(aud=[o.audience, _other_guid()])),
        401,
        "audience",
    ),
    Attack(
        "app_id_uri_aud_not_configured",
        lambda o: _bearer(o.token(aud=f"api://{o.audience}")),
        401,
        "audience",
    ),
    Attack("missing_aud", lambda o: _bearer(o.token(drop=["aud"])), 401, "missing_claim"),
    Attack(
        "wrong_iss",
        lambda o: _bearer(o.token(iss=f"https://login.microsoftonline.com/{_other_guid()}/v2.0")),
        401,
        "issuer",
    ),
    Attack("iss_partial_prefix", lambda o: _bearer(o.token(iss=o.issuer.rsplit("/", 1)[0])), 401, "issuer"),
    Attack("iss_with_suffix", lambda o: _bearer(o.token(iss=o.issuer + "/")), 401, "issuer"),
    Attack(
        "iss_v1_form",
        lambda o: _bearer(o.token(iss=f"https://sts.windows.net/{o.tenant_id}/")),
        401,
        "issuer",
    ),
    Attack("missing_iss", lambda o: _bearer(o.token(drop=["iss"])), 401, "missing_claim"),
    Attack("wrong_tid", lambda o: _bearer(o.token(tid=_other_guid())), 401, "tenant"),
    Attack("non_guid_tid", lambda o: _bearer(o.token(tid="common")), 401, "tenant"),
    Attack("uppercase_tid", lambda o: _bearer(o.token(tid=o.tenant_id.upper())), 401, "tenant"),
    Attack("missing_tid", lambda o: _bearer(o.token(drop=["tid"])), 401, "missing_claim"),
    Attack("ver_1_0", lambda o: _bearer(o.token(ver="1.0")), 401, "version"),
    Attack("missing_ver", lambda o: _bearer(o.token(drop=["ver"])), 401, "missing_claim"),
    # ---- who the caller is
    Attack("no_scp_no_roles", lambda o: _bearer(o.token(scp=None, drop=["roles"])), 401, "no_permissions"),
    Attack("empty_scp_empty_roles", lambda o: _bearer(o.token(scp="", roles=[])), 401, "no_permissions"),
    Attack(
        "roles_not_a_list", lambda o: _bearer(o.sign({**o.claims(), "roles": "Clinician"})), 401, "malformed"
    ),
    Attack(
        "guest_from_other_tenant",
        lambda o: _bearer(o.token(idp=f"https://sts.windows.net/{_other_guid()}/")),
        401,
        "guest",
    ),
    Attack("guest_acct_claim", lambda o: _bearer(o.token(acct=1)), 401, "guest"),
    Attack("missing_client_app", lambda o: _bearer(o.token(drop=["azp"])), 401, "client"),
    Attack("non_guid_oid", lambda o: _bearer(o.token(oid="someone")), 401, "subject"),
    # ---- valid tokens that must not get through any PHI route: 403
    Attack("wrong_scope", lambda o: _bearer(o.token(scp="User.Read")), 403, None),
    Attack("scope_without_any_role", lambda o: _bearer(o.token(roles=[])), 403, None),
    Attack("unknown_role_only", lambda o: _bearer(o.token(roles=["Administrator"])), 403, None),
    Attack("app_token_with_user_roles", lambda o: _bearer(o.app_token(roles=ALL_USER_ROLES)), 403, None),
)


def attack_ids(corpus: Sequence[Attack]) -> list[str]:
    return [a.name for a in corpus]
