"""PHI canaries through EVERY registered function, with the production audit trail and the real exporter.

One scenario drives each function in `function_app.app` (every HTTP route including its error paths,
the queue, Service Bus and timer triggers) with the synthetic canary corpus in bodies, headers, ids and
messages. Telemetry goes through the REAL Azure Monitor exporter to the loopback ingestion capture;
the audit trail is the one built from settings (append-blob archive on Azurite + OTel sink), with the
keyed pseudonymizer. Then no canary form (raw, URL-encoded, JSON-escaped) may appear in:
- any captured telemetry byte (wire, decompressed body, path, headers);
- any HTTP error body or any response header;
- any audit record (the archive blobs on Azurite, and the OTel audit events in the capture);
- any blob name or blob metadata in the PHI and audit containers;
- any published Service Bus event (body and properties), any message the app enqueued, any
  exception text a trigger raised to the host.
And the capture must not be empty: spans, logs and audit events must have arrived, and the test must
have invoked every indexed function.

Service Bus is captured at the SDK transport boundary (`sent_events`): no broker can run here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from shared.audit import install_audit_trail
from shared.config import get_settings
from shared.data import get_database
from shared.errors import AppError
from shared.roles import Role
from tests.conftest import InvocationContext
from tests.fixtures.telemetry import TelemetryCapture
from tests.fixtures.workload import Clinical, SentEvents, lab_message, lab_result_body, take_intake_message
from tests.security.phi_canaries import (
    ADDRESS,
    CANARIES,
    DOB,
    EMAIL,
    EVERYTHING,
    IP,
    MEMBER_ID,
    MRN,
    MRN_BARE,
    NAME,
    SECRETS,
    find_canaries,
)

pytestmark = [pytest.mark.security, pytest.mark.integration]

CANARY_PATIENT: dict[str, Any] = {
    "mrn": MRN_BARE,
    "given_name": NAME.split()[0],
    "family_name": NAME.split()[1],
    "birth_date": DOB,
    "sex": "male",
    "phone": "+16175550134",
    "email": EMAIL,
    "address_line": ADDRESS.split(",")[0],
    "city": "Springfield",
    "state": "MA",
    "postal_code": "01109-2231",
    "insurance_payer": "Example Health Plan",
    "insurance_member_id": MEMBER_ID,
    "note": EVERYTHING,  # every canary at once, in the free-text field
}
# Headers a gateway or browser might forward; none may come back or reach telemetry.
NOISY_HEADERS = {k: v for k, v in SECRETS.items() if k != "Authorization"} | {"X-Forwarded-For": IP}


class Scenario:
    """Calls functions as the host would and keeps what must be checked afterwards."""

    def __init__(self, clinical: Clinical) -> None:
        self.clinical = clinical
        self.invoked: set[str] = set()
        self.error_bodies: list[bytes] = []
        self.headers: list[str] = []
        self.raised: list[str] = []

    def http(
        self,
        name: str,
        method: str,
        route_params: dict[str, str],
        *,
        role: Role | None = Role.CLINICIAN,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> func.HttpResponse:
        auth = {} if role is None else self.clinical.as_role(role)
        if role is Role.LAB_SYSTEM:
            auth = self.clinical.oidc.bearer(self.clinical.oidc.app_token())
        fn = self.clinical.driver.get(name)
        request = func.HttpRequest(
            method=method,
            url=f"http://localhost:7071/api/{fn.get_trigger().route}",
            headers={**NOISY_HEADERS, **auth, **(headers or {})},
            params={},
            route_params=route_params,
            body=body,
        )
        user_function = fn.get_user_function()
        kwargs: dict[str, Any] = {fn.get_trigger().name: request}
        if "context" in user_function.__code__.co_varnames[: user_function.__code__.co_argcount]:
            kwargs["context"] = InvocationContext(name)
        response = user_function(**kwargs)
        self.invoked.add(name)
        self.headers += [f"{k}: {v}" for k, v in response.headers.items()]
        if response.status_code >= 400:
            self.error_bodies.append(response.get_body())
        return response

    def trigger(self, name: str, message: Any) -> None:
        fn = self.clinical.driver.get(name)
        self.invoked.add(name)
        try:
            if fn.get_trigger().type == "serviceBusTrigger":  # + the settlement client (loopback gRPC)
                self.clinical.driver.service_bus(name, message, InvocationContext(name))
            else:
                fn.get_user_function()(**{fn.get_trigger().name: message, "context": InvocationContext(name)})
        except AppError as exc:  # raised to the host: its text and structure must be PHI-free too
            self.raised += [str(exc), type(exc).__name__, json.dumps(exc.errors)]


def _run_scenario(s: Scenario, sent_events: SentEvents) -> dict[str, int]:
    statuses: dict[str, int] = {}

    def expect(label: str, response: func.HttpResponse, status: int) -> None:
        statuses[label] = response.status_code
        assert response.status_code == status, (label, response.get_body()[:200])

    expect("health", s.http("health", "GET", {}, role=None), 200)

    # --- create: success, then every error path with canaries in the input
    created = s.http(
        "patients_create",
        "POST",
        {},
        role=Role.INTAKE,
        body=json.dumps(CANARY_PATIENT).encode(),
        headers={"Content-Type": "application/json"},
    )
    expect("create", created, 201)
    patient_id = json.loads(created.get_body())["id"]
    bad = {**CANARY_PATIENT, "mrn": MRN, "given_name": 7, NAME: SECRETS["Cookie"], "birth_date": "02/14/1961"}
    expect(
        "create.invalid",
        s.http("patients_create", "POST", {}, role=Role.INTAKE, body=json.dumps(bad).encode()),
        400,
    )
    expect(
        "create.malformed",
        s.http("patients_create", "POST", {}, role=Role.INTAKE, body=b'{"note": "' + EVERYTHING.encode()),
        400,
    )
    expect(
        "create.duplicate",
        s.http("patients_create", "POST", {}, role=Role.INTAKE, body=json.dumps(CANARY_PATIENT).encode()),
        409,
    )
    expect(
        "create.too_large",
        s.http(
            "patients_create",
            "POST",
            {},
            role=Role.INTAKE,
            body=json.dumps({"note": EVERYTHING * 200}).encode(),
        ),
        413,
    )
    expect(
        "create.forbidden",
        s.http("patients_create", "POST", {}, role=Role.BILLING, body=json.dumps(CANARY_PATIENT).encode()),
        403,
    )
    expect(
        "create.token",
        s.http("patients_create", "POST", {}, role=None, headers={"Authorization": SECRETS["Authorization"]}),
        401,
    )

    # --- read: each role's view, then unknown, malformed and forbidden
    for role in (Role.CLINICIAN, Role.INTAKE, Role.BILLING, Role.RESEARCHER):
        expect(f"read.{role}", s.http("patients_read", "GET", {"id": patient_id}, role=role), 200)
    expect("read.unknown", s.http("patients_read", "GET", {"id": str(uuid.uuid4())}), 404)
    expect("read.canary_id", s.http("patients_read", "GET", {"id": MRN}), 404)
    expect("read.app_only", s.http("patients_read", "GET", {"id": patient_id}, role=Role.LAB_SYSTEM), 403)

    # --- upload: a text document that is all canaries; then wrong type, unknown patient, forbidden
    upload = s.http(
        "documents_upload",
        "POST",
        {"id": patient_id},
        role=Role.INTAKE,
        body=EVERYTHING.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    expect("upload", upload, 202)
    document_id = json.loads(upload.get_body())["documentId"]
    expect(
        "upload.type",
        s.http(
            "documents_upload",
            "POST",
            {"id": patient_id},
            role=Role.INTAKE,
            body=EVERYTHING.encode(),
            headers={"Content-Type": f"text/html; name={NAME}"},
        ),
        415,
    )
    expect(
        "upload.unknown",
        s.http(
            "documents_upload",
            "POST",
            {"id": str(uuid.uuid4())},
            role=Role.INTAKE,
            body=EVERYTHING.encode(),
            headers={"Content-Type": "text/plain"},
        ),
        404,
    )
    expect(
        "upload.forbidden",
        s.http(
            "documents_upload",
            "POST",
            {"id": patient_id},
            role=Role.RESEARCHER,
            body=EVERYTHING.encode(),
            headers={"Content-Type": "text/plain"},
        ),
        403,
    )

    # --- the queue trigger with the real Azurite message, a redelivery, and a canary-laden bad message
    message = take_intake_message()
    assert json.loads(message.get_body()) == {"documentId": document_id}, "the app enqueued more than an id"
    s.trigger("document_intake", message)
    s.trigger("document_intake", message)  # redelivery: nothing twice
    bad_message = func.QueueMessage(
        id=str(uuid.uuid4()), body=json.dumps({"documentId": MRN, "note": EVERYTHING}).encode()
    )
    s.trigger("document_intake", bad_message)
    assert len(sent_events.messages) == 1, "one DocumentReceived event"

    # --- download: success, another patient's id, a canary id, forbidden role
    expect("download", s.http("documents_download", "GET", {"id": patient_id, "docId": document_id}), 200)
    expect("download.unknown", s.http("documents_download", "GET", {"id": patient_id, "docId": MRN}), 404)
    expect(
        "download.forbidden",
        s.http("documents_download", "GET", {"id": patient_id, "docId": document_id}, role=Role.BILLING),
        403,
    )

    # --- Service Bus lab results: valid (MRN and order id are canaries), then invalid with canaries
    s.trigger("lab_results", lab_message(lab_result_body(MRN_BARE, lab_order_id=MEMBER_ID)))
    s.trigger("lab_results", lab_message(lab_result_body(MRN_BARE, lab_order_id=MEMBER_ID), delivery_count=2))
    s.trigger("lab_results", lab_message(lab_result_body(MRN_BARE, value=EVERYTHING, unit=NAME)))
    s.trigger("lab_results", lab_message(lab_result_body("ZZ9999999")))  # unknown patient
    s.trigger("lab_results", lab_message(EVERYTHING.encode()))

    # --- retention: the canary patient has expired
    stale = "2000-01-01T00:00:00.000000Z"
    get_database().run(
        lambda cur: cur.execute("UPDATE patients SET updated_at = ? WHERE id = ?", (stale, patient_id))
    )
    s.trigger("retention_sweep", _timer())
    expect("read.after_retention", s.http("patients_read", "GET", {"id": patient_id}), 404)
    return statuses


def _timer() -> Any:
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=False)


def _blob_facts(service: BlobServiceClient, container: str) -> tuple[list[str], list[bytes]]:
    """(names and metadata, contents) of every blob in a container."""
    client = service.get_container_client(container)
    names: list[str] = []
    contents: list[bytes] = []
    for blob in client.list_blobs(include=["metadata"]):
        names += [
            blob.name,
            json.dumps(blob.metadata or {}),
            json.dumps(dict(blob.content_settings or {}), default=str),
        ]
        contents.append(client.download_blob(blob.name).readall())
    return names, contents


@pytest.fixture
def audit_archive(
    clinical: Clinical, telemetry_capture: TelemetryCapture, app_env: Callable[..., None]
) -> str:
    """A fresh audit container (settings change before `sent_events` patches the Service Bus client)."""
    name = "audit-" + uuid.uuid4().hex[:12]
    app_env(AUDIT_CONTAINER=name)
    return name


def test_every_function_with_canaries_leaks_nothing(
    clinical: Clinical, telemetry_capture: TelemetryCapture, audit_archive: str, sent_events: SentEvents
) -> None:
    install_audit_trail(None)  # the production trail: blob archive + OTel sink, keyed pseudonyms
    scenario = Scenario(clinical)

    statuses = _run_scenario(scenario, sent_events)
    telemetry_capture.flush()

    # Coverage: every function the host would index was driven.
    indexed = set(clinical.driver.functions)
    assert scenario.invoked == indexed, f"not driven: {sorted(indexed - scenario.invoked)}"
    assert {s for s in statuses.values() if s >= 400} >= {400, 401, 403, 404, 409, 413, 415}

    # Something must have arrived, or the absence of canaries proves nothing.
    telemetry_capture.assert_arrived(["Request", "Message"])
    audit_envelopes = [
        e for e in telemetry_capture.envelopes_of("Event") if e["data"]["baseData"].get("name") == "audit"
    ]
    assert len(audit_envelopes) >= 20, f"only {len(audit_envelopes)} audit events reached the exporter"
    service = BlobServiceClient.from_connection_string(clinical.azurite.connection_string)
    audit_names, audit_blobs = _blob_facts(service, audit_archive)
    records = [json.loads(line) for blob in audit_blobs for line in blob.splitlines() if line.strip()]
    assert len(records) >= 20, f"only {len(records)} audit records archived"
    actions = {(r.get("action"), r.get("outcome")) for r in records}
    assert len(actions) >= 3, actions
    assert sent_events.messages, "no event was published"

    phi_names, _ = _blob_facts(service, get_settings().storage.phi_container)  # contents are PHI by design
    queue = QueueServiceClient.from_connection_string(clinical.azurite.connection_string)
    intake = queue.get_queue_client(get_settings().storage.document_intake_queue)
    enqueued = [m.content for m in intake.peek_messages(max_messages=32)]
    events = [json.dumps(body) for body in sent_events.bodies()] + [
        json.dumps({k: str(v) for k, v in (m.application_properties or {}).items()})
        + str(m.subject)
        + str(m.correlation_id)
        + str(m.message_id)
        + str(m.content_type)
        for m in sent_events.messages
    ]

    # What the host would put on dead-lettered messages (reason, description): three invalid lab results.
    dead_letters = [
        f"{c.reason} {c.description}" for c in clinical.settlement.calls if c.method == "Deadletter"
    ]
    assert len(dead_letters) == 3, clinical.settlement.calls
    telemetry_capture.assert_no_canaries(
        extra=[
            *dead_letters,
            *scenario.error_bodies,
            *scenario.headers,
            *scenario.raised,
            *audit_names,
            *audit_blobs,
            *phi_names,
            *enqueued,
            *events,
        ]
    )
    # And the places checked did hold what the scenario put through them (a sanity check of the oracle).
    assert find_canaries([EVERYTHING], CANARIES), "the corpus search finds nothing: the oracle is broken"
