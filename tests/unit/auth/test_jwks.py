"""The signing-key cache against a real loopback JWKS endpoint, with a hand-driven clock."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.auth.fetch import FetchError, fetch_json
from shared.auth.jwks import FAILURE_BACKOFF_SECONDS, SigningKeyCache, parse_jwks
from shared.auth.metadata import parse_metadata
from shared.errors import DependencyUnavailable
from tests.fixtures.oidc import FakeClock, OidcServer, rsa_key

TTL = 12 * 3600
MIN_INTERVAL = 300


@pytest.fixture
def cache(oidc_server: OidcServer, clock: FakeClock) -> SigningKeyCache:
    return SigningKeyCache(
        oidc_server.authority,
        timeout_seconds=2,
        cache_seconds=TTL,
        refresh_min_interval_seconds=MIN_INTERVAL,
        clock=clock,
    )


def _rsa_jwk(bits: int = 2048, **extra: Any) -> dict[str, Any]:
    key = rsa_key(0) if bits == 2048 else rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": uuid.uuid4().hex, "use": "sig"}, **extra)
    return jwk


# ------------------------------------------------------------------------------------------ parsing
def test_parse_keeps_only_rsa_signing_keys_of_2048_bits_or_more() -> None:
    good = _rsa_jwk(alg="RS256")
    no_alg = _rsa_jwk()
    ec_jwk: dict[str, Any] = ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True
    )
    ec_jwk.update(kid="ec", use="sig")
    document = {
        "keys": [
            good,
            no_alg,
            _rsa_jwk(use="enc"),
            {k: v for k, v in _rsa_jwk().items() if k != "use"},
            _rsa_jwk(alg="RS512"),
            _rsa_jwk(bits=1024),
            ec_jwk,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "use": "sig"},
            {"kty": "RSA", "kid": "broken", "use": "sig", "n": "!!", "e": "AQAB"},
            {**_rsa_jwk(), "kid": ""},
            {**_rsa_jwk(), "kid": "k" * 129},
            "not a key",
        ]
    }
    assert set(parse_jwks(document)) == {good["kid"], no_alg["kid"]}


def test_parse_drops_a_kid_published_twice() -> None:
    first = _rsa_jwk()
    second = {**RSAAlgorithm.to_jwk(rsa_key(1).public_key(), as_dict=True), "kid": first["kid"], "use": "sig"}
    kept = _rsa_jwk()
    assert set(parse_jwks({"keys": [first, second, kept]})) == {kept["kid"]}


def test_parse_rejects_a_document_without_keys() -> None:
    with pytest.raises(FetchError):
        parse_jwks({"keys": "nope"})


def test_metadata_jwks_uri_must_be_https_or_loopback() -> None:
    assert parse_metadata({"issuer": "x", "jwks_uri": "https://login.example/keys"}).jwks_uri
    assert parse_metadata({"issuer": "x", "jwks_uri": "http://127.0.0.1:1/keys"}).jwks_uri
    for bad in ("http://login.example/keys", "file:///etc/passwd", "ftp://x/keys", 42):
        with pytest.raises(FetchError):
            parse_metadata({"issuer": "x", "jwks_uri": bad})
    with pytest.raises(FetchError):
        parse_metadata({"jwks_uri": "https://login.example/keys"})


# ------------------------------------------------------------------------------------------ caching
def test_known_kid_is_served_from_cache(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    issuer, key = cache.lookup(oidc_server.signing.kid)
    assert key is not None and issuer == oidc_server.issuer
    assert (oidc_server.metadata_fetches, oidc_server.jwks_fetches) == (1, 1)
    for _ in range(50):
        clock.advance(60)
        assert cache.lookup(oidc_server.signing.kid)[1] is key
    assert oidc_server.jwks_fetches == 1


def test_rotation_is_picked_up_after_one_forced_refresh(
    cache: SigningKeyCache, oidc_server: OidcServer
) -> None:
    cache.lookup(oidc_server.signing.kid)
    new = oidc_server.rotate()
    assert cache.lookup(new.kid)[1] is not None
    assert oidc_server.jwks_fetches == 2
    assert cache.lookup(new.kid)[1] is not None
    assert oidc_server.jwks_fetches == 2


def test_kid_spray_causes_at_most_one_fetch_per_interval(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    cache.lookup(oidc_server.signing.kid)
    before = oidc_server.jwks_fetches
    for _ in range(1000):
        assert cache.lookup(uuid.uuid4().hex)[1] is None
    assert oidc_server.jwks_fetches - before == 1  # exactly the one allowed forced refresh
    clock.advance(MIN_INTERVAL - 1)
    for _ in range(1000):
        cache.lookup(uuid.uuid4().hex)
    assert oidc_server.jwks_fetches - before == 1
    clock.advance(1)
    for _ in range(1000):
        cache.lookup(uuid.uuid4().hex)
    assert oidc_server.jwks_fetches - before == 2


def test_concurrent_kid_spray_still_fetches_once(cache: SigningKeyCache, oidc_server: OidcServer) -> None:
    cache.lookup(oidc_server.signing.kid)
    before = oidc_server.jwks_fetches

    def spray() -> None:
        for _ in range(100):
            cache.lookup(uuid.uuid4().hex)

    threads = [threading.Thread(target=spray) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert oidc_server.jwks_fetches - before == 1


def test_provider_down_after_warm_up_keeps_last_known_good(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    kid = oidc_server.signing.kid
    cache.lookup(kid)
    oidc_server.down = True
    assert cache.lookup(uuid.uuid4().hex)[1] is None  # forced refresh fails quietly
    clock.advance(TTL + 1)  # even past the TTL, a failed refresh keeps the keys
    assert cache.lookup(kid)[1] is not None
    clock.advance(FAILURE_BACKOFF_SECONDS + 1)
    assert cache.lookup(kid)[1] is not None
    oidc_server.down = False
    clock.advance(FAILURE_BACKOFF_SECONDS + 1)
    fetches = oidc_server.jwks_fetches
    assert cache.lookup(kid)[1] is not None
    assert oidc_server.jwks_fetches == fetches + 1  # stale keys refreshed once the provider is back


def test_provider_down_from_cold_start_fails_closed_and_backs_off(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    oidc_server.down = True
    with pytest.raises(DependencyUnavailable):
        cache.lookup(oidc_server.signing.kid)
    attempts = oidc_server.fetches
    for _ in range(100):
        with pytest.raises(DependencyUnavailable):
            cache.lookup(oidc_server.signing.kid)
    assert oidc_server.fetches == attempts, "a dead endpoint must not be hit on every request"
    oidc_server.down = False
    clock.advance(FAILURE_BACKOFF_SECONDS)
    assert cache.lookup(oidc_server.signing.kid)[1] is not None


def test_an_empty_key_set_does_not_replace_good_keys(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    kid = oidc_server.signing.kid
    cache.lookup(kid)
    oidc_server.keys.clear()
    clock.advance(TTL + 1)
    assert cache.lookup(kid)[1] is not None


def test_keys_are_refreshed_after_the_ttl(
    cache: SigningKeyCache, oidc_server: OidcServer, clock: FakeClock
) -> None:
    old = oidc_server.signing.kid
    cache.lookup(old)
    oidc_server.keys.remove(oidc_server.signing)
    oidc_server.rotate()
    clock.advance(TTL - 1)
    assert cache.lookup(old)[1] is not None
    clock.advance(1)
    assert cache.lookup(old)[1] is None  # the retired key is gone after the scheduled refresh


# ----------------------------------------------------------------------------------------- fetching
@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: only a timeout ends a request to it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/keys"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_fetch_times_out(silent_server: str) -> None:
    with pytest.raises(FetchError, match="unreachable"):
        fetch_json(silent_server, timeout=0.2)


def test_fetch_refuses_plain_http_to_other_hosts_and_other_schemes() -> None:
    for url in ("http://login.microsoftonline.com/x", "file:///etc/hosts", "ftp://127.0.0.1/x"):
        with pytest.raises(FetchError, match="url_not_allowed"):
            fetch_json(url, timeout=1)


def test_fetch_does_not_follow_redirects(oidc_server: OidcServer) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", oidc_server.jwks_uri)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        with pytest.raises(FetchError):
            fetch_json(f"http://127.0.0.1:{server.server_address[1]}/", timeout=2)
        assert oidc_server.jwks_fetches == 0
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_refuses_oversized_documents(oidc_server: OidcServer) -> None:
    oidc_server.extra_jwks.append({"padding": "x" * 600_000})
    with pytest.raises(FetchError, match="too_large"):
        fetch_json(oidc_server.jwks_uri, timeout=2)


def test_fetch_turns_deeply_nested_json_into_invalid_json() -> None:
    """json.loads raises RecursionError (not ValueError) on deep nesting. Escaping `fetch_json`, it
    would skip the cache's failure back-off (a refetch on every request) and answer 500, not 503."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    nested = b"[" * 100_000 + b"]" * 100_000  # well under MAX_DOCUMENT_BYTES

    class Nested(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(nested)))
            self.end_headers()
            self.wfile.write(nested)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Nested)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        with pytest.raises(FetchError, match="invalid_json"):
            fetch_json(f"http://127.0.0.1:{server.server_address[1]}/keys", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
