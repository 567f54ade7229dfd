"""`make demo`: the clinical scenario end to end on this machine, no Core Tools, in well under a minute.

What runs for real: Azurite (Blob + Queue, from node_modules, free ports, throw-away data), the
embedded SQLite database (temp dir), RS256 tokens from a loopback OpenID provider with a run-time key,
the registered functions from `function_app` called with real `azure.functions` objects, the
production audit trail (append-blob archive on Azurite + OTel), and the real Azure Monitor exporter
sending to a loopback ingestion endpoint. Service Bus has no local broker: sends are captured at the
SDK's transport boundary (the real `ServiceBusClient` is built; only its sender is replaced).

Scenario: create a patient -> upload a document -> take the real message off the Azurite queue and
hand it to the `document-intake` trigger (then redeliver it) -> a lab result through the
`lab-results` trigger -> read the patient as each role (and be refused without the role) -> download
-> time passes -> `retention-sweep`. Then it prints the audit trail (from the archive in Azurite) and
checks that no synthetic patient value reached the captured telemetry.

Exit 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

# gRPC's C core logs connection chatter (the loopback settlement server closing) at INFO to stderr.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from scripts.local_stack import IngestionCapture, LoopbackOidc, azurite, free_port
from scripts.servicebus_host import SettlementServer, received_message, serve_settlement

# Synthetic patient. Every value (and its URL-encoded / JSON-escaped forms) is searched for in the
# captured telemetry at the end: none of it may be there.
PATIENT: dict[str, Any] = {
    "mrn": "DEMO4417290",
    "given_name": "Marisol",
    "family_name": "Featherstonehaugh",
    "birth_date": "1958-07-23",
    "sex": "female",
    "phone": "+15555550199",
    "email": "marisol.featherstonehaugh@example.org",
    "address_line": "77 Larkspur Crescent",
    "city": "Springfield",
    "state": "MA",
    "postal_code": "01109",
    "insurance_payer": "Example Health Plan",
    "insurance_member_id": "EHP-99182736",
    "allergies": ["227493005"],
    "problems": ["E11.9"],
    "note": "Reports dizziness after the Larkspur Crescent move; daughter Imelda drives her.",
}
CANARIES = [
    "DEMO4417290",
    "Marisol",
    "Featherstonehaugh",
    "1958-07-23",
    "+15555550199",
    "5555550199",
    "marisol.featherstonehaugh@example.org",
    "77 Larkspur Crescent",
    "Larkspur",
    "EHP-99182736",
    "dizziness",
    "Imelda",
    "LAB-DEMO-5501",
    "198.51.100.23",
]
CLIENT_IP = "198.51.100.23"  # documentation range; sent as X-Forwarded-For
DOCUMENT = b"%PDF-1.7\n% synthetic discharge summary for the demo\n" + b"0" * 256 + b"\n%%EOF\n"
QUIET_EXPORTER_ENV = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


def canary_forms(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}


def find_canaries(blobs: list[bytes]) -> list[str]:
    texts = [b.decode("utf-8", errors="replace") for b in blobs]
    return [v for v in CANARIES if any(form in t for form in canary_forms(v) for t in texts)]


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)
    passed: int = 0

    def expect(self, label: str, ok: bool) -> None:
        if ok:
            self.passed += 1
            print(f"  ok    {label}")
        else:
            self.failures.append(label)
            print(f"  FAIL  {label}")


class RecordingSender:
    """Stands in for the Service Bus sender (no local broker): keeps what would have been sent."""

    def __init__(self, sink: list[Any]) -> None:
        self._sink = sink

    def __enter__(self) -> RecordingSender:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def send_messages(self, message: Any) -> None:
        self._sink.append(message)


def configure_environment(
    storage: str, oidc: LoopbackOidc, ingestion: IngestionCapture, workdir: str
) -> None:
    os.environ.update(
        {
            "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "OIDC_TENANT_ID": oidc.tenant_id,
            "OIDC_AUDIENCE": oidc.audience,
            "OIDC_AUTHORITY": oidc.authority,
            "PhiStorage": storage,
            "ServiceBusConnection": (
                "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
                "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
            ),
            "LOCAL_SECRET_PSEUDONYM_KEY": "demo-only-" + uuid.uuid4().hex,
            "LOCAL_SQLITE_PATH": os.path.join(workdir, "phi.sqlite3"),
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey={uuid.uuid4()};IngestionEndpoint={ingestion.endpoint}"
            ),
            "OTEL_SERVICE_NAME": "hipaa-functions-demo",
            "TRUST_FORWARDED_FOR": "false",
            **QUIET_EXPORTER_ENV,
        }
    )
    # Whatever the shell had, the demo uses the embedded database and local secrets only.
    for name in (
        "KEY_VAULT_URI",
        "SQL_SERVER",
        "SQL_DATABASE",
        "AZURE_CLIENT_ID",
        "OTEL_TRACES_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    ):
        os.environ.pop(name, None)


class Host:
    """Plays the Functions host: finds indexed functions and calls them with real objects."""

    def __init__(self, app: Any, message_actions: Any = None) -> None:
        self.functions = {f.get_function_name(): f for f in app.get_functions()}
        self.message_actions = message_actions

    def _call(self, name: str, value: Any) -> Any:
        import azure.functions as func
        from azure.functions._abc import TraceContext

        class Trace(TraceContext):  # type: ignore[misc]
            def __init__(self) -> None:
                self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

            trace_parent = property(lambda self: self._parent)
            trace_state = property(lambda self: "")
            attributes = property(lambda self: {})

        class Context(func.Context):  # type: ignore[misc]
            invocation_id = property(lambda self: str(uuid.uuid4()))
            thread_local_storage = property(lambda self: None)
            function_name = property(lambda self: name)
            function_directory = property(lambda self: os.getcwd())
            trace_context = property(lambda self: Trace())
            retry_context = property(lambda self: None)

        fn = self.functions[name]
        kwargs: dict[str, Any] = {fn.get_trigger().name: value}
        user_function = fn.get_user_function()
        parameters = user_function.__code__.co_varnames[: user_function.__code__.co_argcount]
        if "context" in parameters:
            kwargs["context"] = Context()
        if "message_actions" in parameters:  # the SDK-type binding's settlement client
            kwargs["message_actions"] = self.message_actions
        return user_function(**kwargs)

    def http(
        self,
        name: str,
        method: str,
        route_params: dict[str, str],
        token: str | None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Any:
        import azure.functions as func

        headers = {"X-Forwarded-For": CLIENT_IP}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        route = str(self.functions[name].get_trigger().route)
        for key, value in route_params.items():
            route = route.replace("{" + key + "}", value)
        request = func.HttpRequest(
            method=method,
            url=f"http://localhost:7071/api/{route}",
            headers=headers,
            params={},
            route_params=route_params,
            body=body,
        )
        return self._call(name, request)

    def trigger(self, name: str, message: Any) -> Any:
        return self._call(name, message)


def run(checks: Checks) -> tuple[int, list[dict[str, Any]]]:
    from azure.functions.queue import QueueMessage
    from azure.functions.timer import TimerRequest

    import function_app
    from shared.config import get_settings
    from shared.data import get_database
    from shared.messaging import get_service_bus_client
    from shared.roles import Role
    from shared.storage import get_storage_clients
    from shared.telemetry.setup import active_pipeline

    host = Host(function_app.app, run.message_actions)  # type: ignore[attr-defined]
    settlement: SettlementServer = run.settlement  # type: ignore[attr-defined]
    oidc: LoopbackOidc = run.oidc  # type: ignore[attr-defined]
    settings = get_settings()
    published: list[Any] = []

    def sender(queue_name: str, **_: Any) -> RecordingSender:
        return RecordingSender(published)

    get_service_bus_client().get_queue_sender = sender  # type: ignore[method-assign]

    def as_role(role: Role) -> str:
        return oidc.token([str(role)], app_only=role is Role.LAB_SYSTEM)

    print("\n1. Intake creates the patient (POST /api/patients)")
    created = host.http(
        "patients_create", "POST", {}, as_role(Role.INTAKE), json.dumps(PATIENT).encode(), "application/json"
    )
    checks.expect("201 Created", created.status_code == 201)
    patient_id = json.loads(created.get_body())["id"]

    print("2. Intake uploads a discharge summary (POST /api/patients/{id}/documents)")
    uploaded = host.http(
        "documents_upload", "POST", {"id": patient_id}, as_role(Role.INTAKE), DOCUMENT, "application/pdf"
    )
    checks.expect("202 Accepted", uploaded.status_code == 202)
    document_id = json.loads(uploaded.get_body())["documentId"]

    print("3. document-intake takes the real message off the Azurite queue")
    queue = get_storage_clients().queue_client(settings.storage.document_intake_queue)
    received = queue.receive_message(visibility_timeout=30)
    checks.expect(
        "the queue message carries the document id only",
        received is not None and json.loads(received.content) == {"documentId": document_id},
    )
    assert received is not None
    message = QueueMessage(
        id=received.id,
        body=str(received.content).encode(),
        dequeue_count=received.dequeue_count,
        pop_receipt=received.pop_receipt,
    )
    host.trigger("document_intake", message)
    host.trigger("document_intake", message)  # the host redelivers: nothing happens twice
    queue.delete_message(received.id, received.pop_receipt)
    checks.expect(
        "one de-identified DocumentReceived event published (redelivery ignored)", len(published) == 1
    )
    event = json.loads(b"".join(published[0].body)) if published else {}
    checks.expect(
        "the event carries a pseudonymous patient token, not the id",
        bool(event) and patient_id not in json.dumps(event) and "patient_token" in event,
    )

    print("4. The lab system sends a result (Service Bus lab-results)")
    lab = {
        "lab_order_id": "LAB-DEMO-5501",
        "version": 1,
        "patient_mrn": PATIENT["mrn"],
        "code": "2345-7",
        "value": "112",
        "unit": "mg/dL",
        "effective_at": "2025-05-30T08:15:00+00:00",
    }
    # Real AMQP messages, decoded by the SDK-type binding's own converter; the header's delivery-count
    # counts prior attempts (0, then 1 for the redelivery).
    for delivery in (0, 1):
        host.trigger("lab_results", received_message(lab, delivery_count=delivery))
    stored = get_database().run(lambda c: (c.execute("SELECT COUNT(*) FROM lab_results"), c.fetchone())[1][0])
    checks.expect("stored once, although delivered twice", stored == 1)
    invalid = received_message({**lab, "patient_mrn": "not an MRN", "ssn": "123-45-6789"})
    host.trigger("lab_results", invalid)
    calls = [(c.method, c.reason) for c in settlement.calls]
    checks.expect(
        "both deliveries completed by the function (over the host's gRPC)",
        calls[:2] == [("Complete", None)] * 2,
    )
    checks.expect(
        "an invalid result is dead-lettered at once with a PHI-free reason code",
        calls[2:] == [("Deadletter", "invalid_lab_result")] and "123-45-6789" not in str(settlement.calls),
    )

    print("5. Each role reads the patient: the response is that role's view")
    for role in (Role.CLINICIAN, Role.INTAKE, Role.BILLING, Role.RESEARCHER):
        read = host.http("patients_read", "GET", {"id": patient_id}, as_role(role))
        fields = sorted(json.loads(read.get_body())) if read.status_code == 200 else []
        checks.expect(f"{role:<10} 200, {len(fields)} fields", read.status_code == 200)
    researcher = json.loads(
        host.http("patients_read", "GET", {"id": patient_id}, as_role(Role.RESEARCHER)).get_body()
    )
    checks.expect(
        "the researcher sees no name, MRN or exact birth date",
        not {"given_name", "family_name", "mrn"} & set(researcher)
        and researcher.get("birth_date") != PATIENT["birth_date"],
    )
    denied = host.http("patients_read", "GET", {"id": patient_id}, as_role(Role.LAB_SYSTEM))
    checks.expect("the lab system's app token is refused: 403", denied.status_code == 403)
    anonymous = host.http("patients_read", "GET", {"id": patient_id}, None)
    checks.expect("no token: 401", anonymous.status_code == 401)

    print("6. A clinician downloads the document (hash verified)")
    download = host.http(
        "documents_download", "GET", {"id": patient_id, "docId": document_id}, as_role(Role.CLINICIAN)
    )
    checks.expect("200 and the exact bytes", download.status_code == 200 and download.get_body() == DOCUMENT)

    print("7. Time passes; retention-sweep deletes what is past PHI_RETENTION_DAYS")
    get_database().run(
        lambda c: c.execute(
            "UPDATE patients SET updated_at = ? WHERE id = ?", ("2000-01-01T00:00:00.000000Z", patient_id)
        )
    )
    host.trigger("retention_sweep", TimerRequest(past_due=False))
    gone = host.http("patients_read", "GET", {"id": patient_id}, as_role(Role.CLINICIAN))
    checks.expect("the patient is gone: 404", gone.status_code == 404)
    blobs = list(get_storage_clients().blob.get_container_client(settings.storage.phi_container).list_blobs())
    checks.expect("the document blob is gone", blobs == [])

    pipeline = active_pipeline()
    if pipeline is not None:
        pipeline.force_flush()
    container = get_storage_clients().blob.get_container_client(settings.storage.audit_container)
    records: list[dict[str, Any]] = []
    for blob in container.list_blobs():
        for line in container.download_blob(blob.name).readall().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return len(published), sorted(records, key=lambda r: str(r.get("recorded")))


def print_audit(records: list[dict[str, Any]]) -> None:
    print(f"\nAudit trail ({len(records)} records, from the append-only archive in Azurite):")
    print(
        f"  {'time':<24} {'action':<6} {'outcome':<8} {'actor roles':<12} {'entity':<10} "
        "pseudonymous id / count"
    )
    for r in records:
        roles = ",".join(r.get("actor_roles") or []) or (
            "(anonymous)" if r.get("source_trigger") == "http" else "(system)"
        )
        entity = r.get("entity_type") or "-"
        ident = r.get("entity_pseudonym") or (
            f"count={r['entity_count']}" if r.get("entity_count") is not None else "-"
        )
        ident = ident if len(ident) <= 40 else ident[:37] + "..."
        print(
            f"  {r.get('recorded', ''):<24} {r.get('action', ''):<6} {r.get('outcome', ''):<8} "
            f"{roles:<12} {entity:<10} {ident}"
        )


def main() -> int:
    started = time.monotonic()
    logging.basicConfig(level=logging.ERROR)
    checks = Checks()
    workdir = tempfile.mkdtemp(prefix="demo-")
    oidc = LoopbackOidc().start()
    ingestion = IngestionCapture().start()
    try:
        print("Starting Azurite, a loopback OpenID provider and a loopback Application Insights endpoint...")
        with azurite() as endpoints, serve_settlement(free_port()) as (settlement, message_actions):
            configure_environment(endpoints.connection_string, oidc, ingestion, workdir)
            run.oidc = oidc  # type: ignore[attr-defined]
            run.settlement = settlement  # type: ignore[attr-defined]
            run.message_actions = message_actions  # type: ignore[attr-defined]
            try:
                published, records = run(checks)
            except Exception as exc:
                checks.expect(f"the scenario ran to the end ({type(exc).__name__})", False)
                if os.environ.get("DEMO_DEBUG"):
                    raise
                return 1
            print_audit(records)
            checks.expect("every PHI access is in the audit trail", len(records) >= 10)
            from shared.telemetry.setup import active_pipeline

            pipeline = active_pipeline()
            if pipeline is not None:
                pipeline.shutdown()  # flush everything still batched before the endpoint goes away
            envelopes = ingestion.envelopes()
            hits = find_canaries(ingestion.all_bytes())
            checks.expect("telemetry arrived at the ingestion endpoint", len(envelopes) > 0)
            checks.expect("no patient value in any captured telemetry byte", not hits)
            kinds = sorted({str(e.get("name", "")).rsplit(".", 1)[-1] for e in envelopes})
            print(
                f"\nTelemetry: {len(envelopes)} envelopes ({', '.join(kinds)}) captured, "
                f"{len(hits)} canary hits; {published} event(s) published."
            )
    finally:
        ingestion.stop()
        oidc.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    if checks.failures:
        print(f"\nDEMO FAILED: {len(checks.failures)} check(s) failed: {checks.failures} ({elapsed:.1f}s)")
        return 1
    print(f"\nDemo passed: {checks.passed} checks in {elapsed:.1f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
