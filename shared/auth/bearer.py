"""Take the access token from `Authorization: Bearer <jwt>`, and from nowhere else.

Everything here runs before any crypto and rejects with `TokenRejected` (401):
- a token-like query parameter (`access_token`, ... or any value shaped like a JWT): query strings end
  up in proxy, APIM and browser logs, so a token there is refused even if a header is also sent;
- a missing header, or one larger than `MAX_AUTHORIZATION_BYTES`;
- anything but exactly `Bearer` + one space + a compact JWS (three base64url segments, the last one
  non-empty). That single pattern rejects several Authorization headers (the host joins them with a
  comma), other schemes, case and whitespace tricks, and unsigned (`alg: none`) tokens.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.auth.rejected import TokenRejected

MAX_AUTHORIZATION_BYTES = 8 * 1024
SCHEME_PREFIX = "Bearer "
TOKEN_QUERY_PARAMETERS = frozenset({"access_token", "id_token", "token", "jwt", "bearer", "authorization"})
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A JSON object header base64url-encoded starts with "eyJ" ('{"'); that is enough to spot a JWT.
_JWT_LIKE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def extract_bearer_token(req: func.HttpRequest) -> str:
    refuse_query_tokens(req)
    value: str | None = req.headers.get("authorization")
    if value is None:
        raise TokenRejected("missing")
    if len(value) > MAX_AUTHORIZATION_BYTES or len(value.encode("utf-8")) > MAX_AUTHORIZATION_BYTES:
        raise TokenRejected("oversized")
    if not value.startswith(SCHEME_PREFIX):
        raise TokenRejected("scheme")
    token: str = value[len(SCHEME_PREFIX) :]
    if _COMPACT_JWS.fullmatch(token) is None:
        raise TokenRejected("shape")
    return token


def refuse_query_tokens(req: func.HttpRequest) -> None:
    pairs = list(req.params.items())
    query = urlsplit(req.url).query
    if query:
        pairs.extend(parse_qsl(query, keep_blank_values=True))
    for name, value in pairs:
        if name.strip().lower() in TOKEN_QUERY_PARAMETERS or _JWT_LIKE.search(value):
            raise TokenRejected("query_token")
