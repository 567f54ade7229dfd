"""Local stand-ins for the demo: Azurite, a loopback OpenID provider, a loopback ingestion endpoint.

Everything binds to 127.0.0.1 on free ports and is torn down on exit. Keys are generated at run time
and never written to disk. (The test suite has richer equivalents in tests/fixtures; `shared/` depends
on neither.)
"""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.roles import DELEGATED_SCOPE

ROOT = Path(__file__).resolve().parent.parent
# Azurite's documented, public emulator account (not a secret); it only works against a local Azurite.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QuietJsonHandler(BaseHTTPRequestHandler):
    """Base for the loopback doubles here and in tests/fixtures: JSON answers, no access log."""

    def send_json(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep output (and captured logs) free of server chatter


def serve(server: ThreadingHTTPServer, name: str) -> None:
    """Serve on a daemon thread until `server.shutdown()`."""
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
    ).start()


# -------------------------------------------------------------------------------------------- Azurite
@dataclass(frozen=True)
class AzuriteEndpoints:
    blob: str
    queue: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.blob};QueueEndpoint={self.queue};"
        )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited early with code {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError("azurite did not start listening in time")


@contextmanager
def azurite() -> Iterator[AzuriteEndpoints]:
    """Azurite from node_modules on free ports with throw-away data (`npm ci` installs it)."""
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("node_modules/.bin/azurite is missing: run `make setup` (npm ci) first")
    location = tempfile.mkdtemp(prefix="demo-azurite-")
    blob, queue, table = free_port(), free_port(), free_port()
    args = [str(binary), "--silent", "--skipApiVersionCheck", "--location", location]
    for service, port in (("blob", blob), ("queue", queue), ("table", table)):
        args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(blob, proc)
        _wait_listening(queue, proc)
        yield AzuriteEndpoints(
            blob=f"http://127.0.0.1:{blob}/{AZURITE_ACCOUNT}",
            queue=f"http://127.0.0.1:{queue}/{AZURITE_ACCOUNT}",
        )
    finally:
        # SIGINT is Azurite's clean stop, but it then waits ~10 s for idle keep-alive connections to
        # close; its data is throw-away, so after a short grace period it is killed.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(location, ignore_errors=True)


# ------------------------------------------------------------------------------------ OpenID provider
@dataclass
class LoopbackOidc:
    """Entra-shaped metadata + JWKS on loopback, and RS256 access tokens signed with a run-time key."""

    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    audience: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_app: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        self._server: ThreadingHTTPServer | None = None

    @property
    def authority(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.tenant_id}/v2.0"

    @property
    def issuer(self) -> str:
        return f"https://login.microsoftonline.com/{self.tenant_id}/v2.0"

    def start(self) -> LoopbackOidc:
        oidc = self
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self._kid, use="sig", alg="RS256")

        class Handler(QuietJsonHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{self.server.server_address[1]}/{oidc.tenant_id}"
                if self.path == f"/{oidc.tenant_id}/v2.0/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": oidc.issuer, "jwks_uri": f"{base}/discovery/v2.0/keys"}
                elif self.path == f"/{oidc.tenant_id}/discovery/v2.0/keys":
                    body = {"keys": [jwk]}
                else:
                    self.send_json(404, b"{}")
                    return
                self.send_json(200, json.dumps(body).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve(self._server, "demo-oidc")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def token(self, roles: Iterable[str], *, app_only: bool = False) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "tid": self.tenant_id,
            "ver": "2.0",
            "oid": str(uuid.uuid4()),
            "sub": uuid.uuid4().hex,
            "azp": self.client_app,
            "azpacr": "0",
            "roles": list(roles),
        }
        if app_only:
            claims.update(idtyp="app", idp=f"https://sts.windows.net/{self.tenant_id}/")
        else:
            claims["scp"] = DELEGATED_SCOPE
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})


# ------------------------------------------------------------------------------- ingestion endpoint
@dataclass
class CapturedRequest:
    path: str
    headers: dict[str, str]
    raw: bytes  # as received on the wire
    body: bytes  # decompressed


@dataclass
class IngestionCapture:
    """What Application Insights would receive: every request the real exporter POSTs (`/v2.1/track`).

    Point the exporter at it with `InstrumentationKey=<guid>;IngestionEndpoint=<endpoint>`. The demo
    and the canary tests (`tests/fixtures/telemetry.py`) both read exactly these bytes."""

    requests: list[CapturedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> IngestionCapture:
        capture = self

        class Handler(QuietJsonHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                with capture.lock:
                    capture.requests.append(CapturedRequest(self.path, dict(self.headers.items()), raw, body))
                try:
                    count = len(json.loads(body)) if body.startswith(b"[") else body.count(b"\n") + 1
                except ValueError:
                    count = 0
                answer = json.dumps({"itemsReceived": count, "itemsAccepted": count, "errors": []}).encode()
                self.send_json(200, answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve(self._server, "ingestion-capture")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def snapshot(self, start: int = 0) -> list[CapturedRequest]:
        with self.lock:
            return list(self.requests[start:])

    def envelopes(self, start: int = 0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for request in self.snapshot(start):
            if request.body.startswith(b"["):
                out.extend(json.loads(request.body))
        return out

    def all_bytes(self, start: int = 0) -> list[bytes]:
        """Every byte received: raw wire bodies, decompressed bodies, paths and headers."""
        out: list[bytes] = []
        for request in self.snapshot(start):
            out += [request.raw, request.body, request.path.encode()]
            out += [f"{k}: {v}".encode() for k, v in request.headers.items()]
        return out
