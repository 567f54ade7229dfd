"""Fetch a small JSON document (OIDC discovery, JWKS) with a timeout, no redirects and a size cap.

Only `https://` is fetched; plain `http://` only for loopback hosts (the tests' local identity
provider). Redirects are refused because a redirect could downgrade to plain HTTP or leave the
authority's host. Failures raise `FetchError` with a fixed label; callers decide what it means.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_DOCUMENT_BYTES = 512 * 1024
_USER_AGENT = "hipaa-functions-oidc/1"


class FetchError(Exception):
    """A fetch failed. The message is a fixed label; the URL is configuration, not input."""


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


# Loopback must never go through an environment proxy (it would not reach 127.0.0.1 on this host).
_LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects)
_HTTPS_OPENER = urllib.request.build_opener(_RefuseRedirects)


def is_allowed_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def fetch_json(url: str, timeout: float) -> dict[str, Any]:
    if not is_allowed_url(url):
        raise FetchError("url_not_allowed")
    loopback = urlsplit(url).hostname in LOOPBACK_HOSTS
    opener = _LOOPBACK_OPENER if loopback else _HTTPS_OPENER
    headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise FetchError("unexpected_status")
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        raise FetchError("unreachable") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FetchError("too_large")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise FetchError("invalid_json") from None
    if not isinstance(document, dict):
        raise FetchError("invalid_json")
    return document
