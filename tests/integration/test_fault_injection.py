"""Fault injection: storage, SQL, Key Vault and JWKS down. Each: bounded retry, then a fail-closed 503.

How each fault is made (so the real retry logic runs, not a stub of it):
- Storage: `PhiStorage` points at a loopback port that accepts TCP connections and drops them at once
  (`DroppingPort` counts the attempts, so the SDK's retry bound is observable). For "queue down,
  blob up" only the QueueEndpoint is dead and the BlobEndpoint is the real Azurite.
- SQL: the embedded database's `sqlite3.connect` hands out connections whose cursors raise
  `OperationalError("database is locked")` (the transient error the sqlite dialect retries) for a set
  number of statements; `Database.run`'s real retry loop and bound decide the outcome.
- Key Vault: `KEY_VAULT_URI` points at a `DroppingPort` (the real `SecretClient`, no emulator can run
  here), with a static credential so no managed-identity endpoint is probed, and nothing cached.
- JWKS: the local OpenID provider answers 503 from a cold start.
Every response is checked for the PHI canaries the test data carries, and the stores are checked for
anything half-written (rows, blobs, queue messages, published events).
"""

from __future__ import annotations

import gc
import json
import socket
import sqlite3
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import HttpTransport
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

import shared.db.connection as db_connection
import shared.identity as identity
from shared.audit import AuditAction, AuditEvent, AuditTrail, install_audit_trail
from shared.config import get_settings
from shared.data import get_database, get_pseudonymizer
from shared.errors import DependencyUnavailable
from shared.roles import Role
from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, FunctionDriver
from tests.fixtures.oidc import OidcServer
from tests.fixtures.telemetry import MemoryAuditSink
from tests.fixtures.workload import PDF, Clinical, SentEvents, take_intake_message
from tests.security.phi_canaries import CANARIES, find_canaries

pytestmark = pytest.mark.integration

# A patient made of canaries: whatever a failure returns must not contain any of it.
CANARY_PATIENT = {
    "mrn": "A7731942",
    "given_name": "Zebulon",
    "family_name": "Quartermaine",
    "birth_date": "1961-02-14",
    "sex": "male",
    "phone": "+16175550134",
    "email": "zebulon.quartermaine@example.org",
    "address_line": "4417 Quillfeather Lane",
    "city": "Springfield",
    "state": "MA",
    "postal_code": "01109-2231",
    "insurance_member_id": "XQH847362915",
    "note": 'Pt reports "intermittent chest tightness" after climbing stairs; denies syncope.',
}


@dataclass
class DroppingPort:
    """A loopback port that accepts connections and closes them at once; counts every attempt."""

    attempts: int = 0
    backoffs: list[float] = field(default_factory=list)
    _sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))

    def __post_init__(self) -> None:
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True, name="dropping-port").start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.attempts += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # linger 0: a reset, as from a dead service

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def dead_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[DroppingPort]:
    """A dead service; the Azure SDK's retry back-off is recorded on it instead of slept.

    `shared/storage.py` replaces the storage SDK's default back-off (15 s then 18 s) with a short one,
    so an outage becomes a 503 within a few seconds; the schedule and the retry count are asserted.
    """
    port = DroppingPort()
    monkeypatch.setattr(HttpTransport, "sleep", lambda self, duration: port.backoffs.append(duration))
    yield port
    port.close()
    with warnings.catch_warnings():
        # A TLS handshake that the dead port reset leaves a socket for the collector; not the app's.
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def storage_connection(blob: str, queue: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={blob};QueueEndpoint={queue};"
    )


def dead_endpoint(port: DroppingPort) -> str:
    return f"http://127.0.0.1:{port.port}/{AZURITE_ACCOUNT}"


def assert_fail_closed(response: func.HttpResponse) -> None:
    body = response.get_body()
    assert response.status_code == 503, body
    problem = json.loads(body)
    assert problem["code"] == "dependency_unavailable"
    assert set(problem) <= {"type", "title", "status", "code", "correlationId"}
    assert response.headers.get("Retry-After")
    texts = [body, *(f"{k}: {v}" for k, v in response.headers.items())]
    assert not find_canaries(texts, CANARIES), "PHI in a failure response"


def post_patient(
    driver: FunctionDriver, oidc: OidcServer, body: dict[str, Any] | None = None
) -> func.HttpResponse:
    return driver.http(
        "POST",
        "patients",
        body=json.dumps(body or CANARY_PATIENT).encode(),
        headers={**oidc.bearer(roles=[str(Role.INTAKE)]), "Content-Type": "application/json"},
    )


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Read the database file directly (not through the app), to see exactly what was committed."""
    with sqlite3.connect(path) as conn:
        return list(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))  # noqa: S608 - fixed table names


@pytest.fixture
def sqlite_file(tmp_path: Path, app_env: Callable[..., None]) -> Path:
    """A file database (not :memory:), so a test can change settings and still see the same rows."""
    path = tmp_path / "phi.sqlite3"
    app_env(LOCAL_SQLITE_PATH=str(path))
    return path


# ---------------------------------------------------------------------------------------------- storage
def test_storage_down_upload_is_503_after_bounded_retries_and_writes_nothing(
    oidc: OidcServer, driver: FunctionDriver, app_env: Callable[..., None], sqlite_file: Path,
    dead_port: DroppingPort, audit_events: list[AuditEvent],
) -> None:  # fmt: skip
    created = post_patient(driver, oidc)
    assert created.status_code == 201
    patient_id = json.loads(created.get_body())["id"]
    app_env(PhiStorage=storage_connection(dead_endpoint(dead_port), dead_endpoint(dead_port)))

    response = driver.http(
        "POST",
        f"patients/{patient_id}/documents",
        body=PDF,
        headers={**oidc.bearer(roles=[str(Role.INTAKE)]), "Content-Type": "application/pdf"},
    )

    assert_fail_closed(response)
    # The SDK retried (retry_total=2: three tries per operation), and gave up: bounded.
    assert 2 <= dead_port.attempts <= 6, dead_port.attempts
    assert 1 <= len(dead_port.backoffs) <= 4 and all(b <= 6 for b in dead_port.backoffs), dead_port.backoffs
    assert rows(sqlite_file, "documents") == []
    assert not [
        e for e in audit_events if e.action is AuditAction.CREATE and e.entity and e.entity.type == "document"
    ]


def test_storage_down_download_is_503_and_not_audited_as_a_read(
    clinical: Clinical, app_env: Callable[..., None], dead_port: DroppingPort, audit_events: list[AuditEvent],
    tmp_path: Path,
) -> None:  # fmt: skip
    app_env(LOCAL_SQLITE_PATH=str(tmp_path / "phi.sqlite3"))
    patient_id = clinical.create_patient()
    uploaded = clinical.upload(patient_id)
    assert uploaded.status_code == 202
    document_id = json.loads(uploaded.get_body())["documentId"]
    app_env(PhiStorage=storage_connection(dead_endpoint(dead_port), dead_endpoint(dead_port)))
    reads_before = [e for e in audit_events if e.action is AuditAction.READ]

    response = clinical.driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )

    assert_fail_closed(response)
    assert PDF not in response.get_body()
    assert 2 <= dead_port.attempts <= 6, dead_port.attempts
    assert [e for e in audit_events if e.action is AuditAction.READ] == reads_before


def test_queue_down_after_blob_written_undoes_blob_and_row(
    azurite: Azurite, oidc: OidcServer, driver: FunctionDriver, app_env: Callable[..., None],
    sqlite_file: Path, dead_port: DroppingPort,
) -> None:  # fmt: skip
    """Blob storage up, queue down: the blob and the row written before the enqueue are removed again."""
    app_env(PhiStorage=storage_connection(azurite.blob_endpoint, dead_endpoint(dead_port)),
            PHI_CONTAINER="phi-fault-" + str(time.monotonic_ns())[-10:])  # fmt: skip
    created = post_patient(driver, oidc)
    patient_id = json.loads(created.get_body())["id"]

    response = driver.http(
        "POST",
        f"patients/{patient_id}/documents",
        body=PDF,
        headers={**oidc.bearer(roles=[str(Role.INTAKE)]), "Content-Type": "application/pdf"},
    )

    assert_fail_closed(response)
    assert dead_port.attempts >= 2
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        get_settings().storage.phi_container
    )
    assert [b.name for b in container.list_blobs()] == [], "a blob was left behind"
    assert rows(sqlite_file, "documents") == []


def test_storage_down_intake_trigger_retries_and_changes_nothing(
    clinical: Clinical, sent_events: SentEvents, app_env: Callable[..., None], dead_port: DroppingPort,
    tmp_path: Path,
) -> None:  # fmt: skip
    app_env(LOCAL_SQLITE_PATH=str(tmp_path / "phi.sqlite3"))
    patient_id = clinical.create_patient()
    assert clinical.upload(patient_id).status_code == 202
    message = take_intake_message()
    app_env(PhiStorage=storage_connection(dead_endpoint(dead_port), dead_endpoint(dead_port)))

    with pytest.raises(DependencyUnavailable):  # raised to the host: the message is retried, not lost
        clinical.driver.queue("document_intake", message)

    assert 2 <= dead_port.attempts <= 6
    assert rows(tmp_path / "phi.sqlite3", "documents"), "the record is still there"
    assert {row[6] for row in rows(tmp_path / "phi.sqlite3", "documents")} == {"received"}
    assert sent_events.messages == []


# --------------------------------------------------------------------------------------------------- SQL
@dataclass
class SqlFaults:
    """Cursors whose statements raise a transient sqlite error while `remaining` > 0."""

    remaining: int = 0
    raised: int = 0
    sleeps: list[float] = field(default_factory=list)


class _FaultyCursor:
    def __init__(self, cursor: sqlite3.Cursor, faults: SqlFaults) -> None:
        self._cursor, self._faults = cursor, faults

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self._faults.remaining > 0:
            self._faults.remaining -= 1
            self._faults.raised += 1
            raise sqlite3.OperationalError("database is locked")
        return self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _FaultyConnection:
    def __init__(self, conn: sqlite3.Connection, faults: SqlFaults) -> None:
        self._conn, self._faults = conn, faults

    def cursor(self) -> _FaultyCursor:
        return _FaultyCursor(self._conn.cursor(), self._faults)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def sql_faults(sqlite_file: Path, monkeypatch: pytest.MonkeyPatch) -> SqlFaults:
    faults = SqlFaults()
    get_database()  # built (and its schema created) before any fault
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        db_connection,
        "sqlite3",
        types.SimpleNamespace(
            connect=lambda *a, **k: _FaultyConnection(real_connect(*a, **k), faults),
            OperationalError=sqlite3.OperationalError,
            Error=sqlite3.Error,
            Connection=sqlite3.Connection,
        ),
    )
    # The real backoff schedule is recorded instead of slept (0.5 s, 1 s, 2 s...).
    monkeypatch.setattr(get_database(), "_sleep", faults.sleeps.append)
    return faults


def test_sql_transient_errors_retry_then_503_with_nothing_written(
    oidc: OidcServer, driver: FunctionDriver, sql_faults: SqlFaults, sqlite_file: Path
) -> None:
    sql_faults.remaining = 1000  # down for good

    response = post_patient(driver, oidc)

    assert_fail_closed(response)
    assert sql_faults.raised == 4, "RetryPolicy.attempts is 4: exactly four tries, then give up"
    assert sql_faults.sleeps == [0.5, 1.0, 2.0], "exponential backoff between the tries"
    assert rows(sqlite_file, "patients") == []


def test_sql_transient_errors_that_clear_are_retried_to_success(
    oidc: OidcServer, driver: FunctionDriver, sql_faults: SqlFaults, sqlite_file: Path
) -> None:
    sql_faults.remaining = 2

    response = post_patient(driver, oidc)

    assert response.status_code == 201
    assert sql_faults.raised == 2 and len(sql_faults.sleeps) == 2
    assert len(rows(sqlite_file, "patients")) == 1, "the retried unit of work committed exactly once"


def test_sql_down_on_read_is_503_without_phi(
    oidc: OidcServer, driver: FunctionDriver, sql_faults: SqlFaults, audit_events: list[AuditEvent]
) -> None:
    patient_id = json.loads(post_patient(driver, oidc).get_body())["id"]
    sql_faults.remaining = 1000

    response = driver.http("GET", f"patients/{patient_id}", headers=oidc.bearer(roles=[str(Role.CLINICIAN)]))

    assert_fail_closed(response)
    assert not [e for e in audit_events if e.action is AuditAction.READ]


# --------------------------------------------------------------------------------------------- Key Vault
class StaticCredential:
    """A credential that always has a token: the fault under test is Key Vault, not the identity."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("synthetic-test-token", int(time.time()) + 3600)


@pytest.fixture
def key_vault_down(
    app_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch, dead_port: DroppingPort, sqlite_file: Path
) -> DroppingPort:
    monkeypatch.setattr(identity, "build_credential", lambda settings: StaticCredential())
    app_env(KEY_VAULT_URI=f"https://127.0.0.1:{dead_port.port}/")
    return dead_port


def test_key_vault_down_researcher_read_is_503_without_phi(
    oidc: OidcServer, driver: FunctionDriver, key_vault_down: DroppingPort, audit_events: list[AuditEvent]
) -> None:
    """The researcher view needs the pseudonym key; with Key Vault down and nothing cached: 503."""
    patient_id = json.loads(post_patient(driver, oidc).get_body())["id"]

    response = driver.http("GET", f"patients/{patient_id}", headers=oidc.bearer(roles=[str(Role.RESEARCHER)]))

    assert_fail_closed(response)
    assert 2 <= key_vault_down.attempts <= 6, key_vault_down.attempts
    assert not [e for e in audit_events if e.action is AuditAction.READ]


def test_key_vault_down_with_the_real_audit_pseudonymizer_fails_closed(
    oidc: OidcServer, driver: FunctionDriver, key_vault_down: DroppingPort, sqlite_file: Path
) -> None:
    """Production wiring: audit records carry keyed pseudonyms. No key, no audit, no PHI: 503."""
    sink = MemoryAuditSink()
    install_audit_trail(AuditTrail([sink], app="fault-test", pseudonymizer=get_pseudonymizer()))

    response = post_patient(driver, oidc)

    assert_fail_closed(response)
    assert all(e.entity is None or e.entity.pseudonym is None for e in sink.events)


def test_key_vault_down_on_create_leaves_no_patient_row(
    oidc: OidcServer, driver: FunctionDriver, key_vault_down: DroppingPort, sqlite_file: Path
) -> None:
    install_audit_trail(AuditTrail([MemoryAuditSink()], app="fault-test", pseudonymizer=get_pseudonymizer()))

    response = post_patient(driver, oidc)

    assert_fail_closed(response)
    assert rows(sqlite_file, "patients") == [], "a 503 must not leave a half-written (unaudited) patient"


def test_key_vault_down_intake_trigger_retries_and_publishes_nothing(
    clinical: Clinical, sent_events: SentEvents, app_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch, dead_port: DroppingPort, tmp_path: Path,
) -> None:  # fmt: skip
    app_env(LOCAL_SQLITE_PATH=str(tmp_path / "phi.sqlite3"))
    patient_id = clinical.create_patient()
    assert clinical.upload(patient_id).status_code == 202
    message = take_intake_message()
    monkeypatch.setattr(identity, "build_credential", lambda settings: StaticCredential())
    app_env(KEY_VAULT_URI=f"https://127.0.0.1:{dead_port.port}/")

    with pytest.raises(DependencyUnavailable):
        clinical.driver.queue("document_intake", message)

    assert dead_port.attempts >= 2
    assert sent_events.messages == []
    assert {row[6] for row in rows(tmp_path / "phi.sqlite3", "documents")} == {"received"}
    queue = QueueServiceClient.from_connection_string(clinical.azurite.connection_string)
    poison = queue.get_queue_client(get_settings().storage.document_intake_queue + "-poison")
    try:
        parked = list(poison.peek_messages())
    except ResourceNotFoundError:
        parked = []
    assert parked == [], "a transient fault must not poison the message"


# -------------------------------------------------------------------------------------------------- JWKS
def test_jwks_down_from_cold_start_is_503_and_nothing_runs(
    oidc: OidcServer, driver: FunctionDriver, sqlite_file: Path, audit_events: list[AuditEvent]
) -> None:
    oidc.down = True

    response = post_patient(driver, oidc)

    assert_fail_closed(response)
    assert 1 <= oidc.fetches <= 4, "bounded: no retry storm against the identity provider"
    assert not sqlite_file.exists() or rows(sqlite_file, "patients") == []
