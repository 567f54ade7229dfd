"""PHI canaries through the REAL Azure Monitor exporters, checked on the bytes that reach ingestion.

Every test drives synthetic PHI through one path, flushes the pipeline, then asserts both that the
expected envelopes arrived (an empty capture fails) and that no canary form is in any captured byte.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.pipeline.policies import HttpLoggingPolicy
from azure.core.rest import HttpRequest
from opentelemetry.trace import Status, StatusCode

from shared.audit import AuditAction, AuditEvent, AuditTrail
from shared.audit_sinks import BlobArchiveAuditSink, OTelAuditSink
from shared.errors import DependencyUnavailable
from shared.telemetry import invocation_span
from shared.telemetry.setup import active_pipeline
from tests.conftest import Azurite, FunctionDriver, InvocationContext
from tests.fixtures.telemetry import TelemetryCapture
from tests.security.phi_canaries import (
    CANARIES,
    DOB,
    EMAIL,
    EVERYTHING,
    MEMBER_ID,
    MRN,
    NAME,
    NOTE,
    PHONE,
    SECRETS,
    SSN,
    find_canaries,
)

pytestmark = pytest.mark.security
log = logging.getLogger("app.canary")


def _pipeline() -> Any:
    pipeline = active_pipeline()
    assert pipeline is not None
    return pipeline


def test_the_canary_search_finds_every_form() -> None:
    """The detector itself must be able to fail, in every form it claims to check."""
    for canary in CANARIES:
        for form in canary.forms():
            assert find_canaries([f"xx{form}yy".encode()], [canary]), (canary.kind, form)


def test_logs_with_phi_in_message_args_extra_and_exceptions(telemetry_capture: TelemetryCapture) -> None:
    log.warning("lookup ssn=%s email %s", SSN, EMAIL)  # PHI as arguments
    log.warning("patient %s has note %s and member id %s", NAME, NOTE, MEMBER_ID)
    log.warning("inline structured PHI: ssn %s", 5, extra={"patient_name": NAME, "dob": DOB, "mrn": MRN})
    log.warning("literal PHI in a template: ssn 512-34-6789 phone (617) 555-0134 name=Zebulon Quartermaine")
    log.warning({"name": NAME, "note": NOTE})  # a non-string message
    try:
        raise ValueError(EVERYTHING)
    except ValueError:
        log.exception("lookup failed for %s", NAME)
    logging.getLogger().error("root logger: %r", {"ssn": SSN})
    telemetry_capture.flush()

    telemetry_capture.assert_arrived(["Message", "Exception"])
    exceptions = telemetry_capture.envelopes_of("Exception")
    details = exceptions[0]["data"]["baseData"]["exceptions"][0]
    assert details["typeName"] == "ValueError"  # the type survives, the message does not
    assert "test_phi_canaries.py" in details["stack"]  # frames survive for debugging
    telemetry_capture.assert_no_canaries()


def test_spans_with_phi_in_names_attributes_events_status_and_exceptions(
    telemetry_capture: TelemetryCapture,
) -> None:
    tracer = _pipeline().tracer()
    context = InvocationContext("patients_read")
    with invocation_span(context, "patients_read", "http", {"http.route": "patients/{id}"}) as span:
        span.set_attribute("patient.name", NAME)
        span.set_attribute("patient.note", NOTE)
        span.set_attribute("url.full", f"https://api.example.org/api/patients/{SSN}?name={NAME}&dob={DOB}")
        span.set_attribute("http.request.header.authorization", SECRETS["Authorization"])
        span.set_attribute("http.request.header.x-functions-key", SECRETS["x-functions-key"])
        span.add_event(f"looked up {MRN} / {EMAIL}", {"member_id": MEMBER_ID, "phone": PHONE})
        span.record_exception(RuntimeError(EVERYTHING))
        with tracer.start_as_current_span(f"query by ssn {SSN} and email {EMAIL}") as child:
            child.set_status(Status(StatusCode.ERROR, f"lookup failed for {NAME} {SSN}"))
        with pytest.raises(KeyError), tracer.start_as_current_span("dependency call"):
            raise KeyError(EVERYTHING)  # auto-recorded exception event and status description
    telemetry_capture.flush()

    telemetry_capture.assert_arrived(["Request", "RemoteDependency"])
    request = telemetry_capture.envelopes_of("Request")[0]
    assert request["data"]["baseData"]["name"].endswith("patients_read")
    assert request["data"]["baseData"]["properties"]["patient.name"] == "[redacted]"
    telemetry_capture.assert_no_canaries()


def test_span_continues_the_host_trace(telemetry_capture: TelemetryCapture) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    context = InvocationContext("patients_read", traceparent=f"00-{trace_id}-{parent_id}-01")
    with invocation_span(context, "patients_read", "http"):
        pass
    telemetry_capture.flush()
    telemetry_capture.assert_arrived(["Request"])
    tags = telemetry_capture.envelopes_of("Request")[0]["tags"]
    assert tags["ai.operation.id"] == trace_id
    assert tags["ai.operation.parentId"] == parent_id


def test_azure_sdk_http_logging_with_phi_url_and_sensitive_headers(
    telemetry_capture: TelemetryCapture,
) -> None:
    """azure-core's HttpLoggingPolicy, made as leaky as a developer could make it (all headers allowed)."""
    server = telemetry_capture.server
    policy = HttpLoggingPolicy()
    policy.allowed_header_names.update(SECRETS)  # worst case: someone allow-listed the secrets
    policy.allowed_query_params.update({"name", "dob", "ssn"})
    sdk_logger = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    previous = sdk_logger.level
    sdk_logger.setLevel(logging.INFO)
    try:
        with PipelineClient(server.endpoint, policies=[policy]) as client:
            url = f"{server.endpoint}v2.1/ping/{MRN}?name={NAME}&dob={DOB}&ssn={SSN}"
            client.send_request(HttpRequest("GET", url, headers=dict(SECRETS)))
    finally:
        sdk_logger.setLevel(previous)
    telemetry_capture.flush()

    messages = [e["data"]["baseData"]["message"] for e in telemetry_capture.envelopes_of("Message")]
    assert any("Request URL" in m for m in messages), messages  # the SDK's logs did arrive
    # The GET itself (with the secrets) went to the same server, which records only POSTs to ingestion.
    telemetry_capture.assert_no_canaries()
    leaked = [m for m in messages if any(v in m for v in SECRETS.values())]
    assert not leaked


def test_metrics_with_phi_attributes(telemetry_capture: TelemetryCapture) -> None:
    counter = _pipeline().meter().create_counter("app.patient_reads")
    counter.add(1, {"http.route": "patients/{id}", "patient.name": NAME, "ssn": SSN, "note": NOTE})
    telemetry_capture.flush()
    telemetry_capture.assert_arrived(["Metric"])
    metric = telemetry_capture.envelopes_of("Metric")[0]["data"]["baseData"]
    assert metric["properties"] == {"http.route": "patients/{id}"}
    telemetry_capture.assert_no_canaries()


class _HmacPseudonymizer:
    def pseudonym(self, kind: str, stable_id: str) -> str:
        import hashlib
        import hmac

        return "v1:" + hmac.new(b"test-key", f"{kind}\x1f{stable_id}".encode(), hashlib.sha256).hexdigest()


@pytest.mark.integration
def test_audit_records_in_telemetry_and_archive_carry_no_phi(
    telemetry_capture: TelemetryCapture, azurite_env: Azurite
) -> None:
    from shared.storage import get_storage_clients

    container = get_storage_clients().blob.get_container_client("audit-canary")
    archive = BlobArchiveAuditSink(lambda: container)
    trail = AuditTrail([archive, OTelAuditSink()], app="canary-app", pseudonymizer=_HmacPseudonymizer())
    context = InvocationContext("patients_read")
    trail.record_access(AuditAction.READ, "patient", MRN, None, context, forwarded_for=f"{SSN}, 10.0.0.1")
    trail.record_access(
        AuditAction.EXPORT if hasattr(AuditAction, "EXPORT") else AuditAction.EXECUTE,
        "patient",
        NAME,
        None,
        context,
    )
    with pytest.raises(ValueError, match="format"):
        trail.record_access(AuditAction.READ, f"patient {NAME}", MRN, None, context)
    telemetry_capture.flush()

    telemetry_capture.assert_arrived(["Event"])
    events = telemetry_capture.envelopes_of("Event")
    assert {e["data"]["baseData"]["name"] for e in events} == {"audit"}
    blobs = list(container.list_blobs(include=["metadata"]))
    assert blobs
    lines = [container.download_blob(b.name).readall() for b in blobs]
    assert sum(line.count(b"\n") for line in lines) == 2
    names_and_metadata = [b.name for b in blobs] + [json.dumps(b.metadata or {}) for b in blobs]
    telemetry_capture.assert_no_canaries(extra=[*lines, *names_and_metadata])


def test_registered_http_functions_with_canaries_in_headers_and_query(
    telemetry_capture: TelemetryCapture, driver: FunctionDriver, audit_events: list[AuditEvent]
) -> None:
    """Every registered HTTP function without route parameters, with canaries in headers and query.

    Routes with parameters belong to the workload's own canary tests (they need valid tokens and data);
    they reuse this fixture the same way.
    """
    bodies: list[bytes] = []
    for fn in driver.functions.values():
        trigger = fn.get_trigger()
        if getattr(trigger, "type", "") != "httpTrigger" or "{" in str(trigger.route):
            continue
        method = str(getattr(trigger.methods[0], "value", trigger.methods[0])) if trigger.methods else "GET"
        response = driver.http(
            method,
            str(trigger.route),
            headers={**SECRETS, "Content-Type": "application/json", "X-Forwarded-For": "203.0.113.10"},
            params={"name": NAME, "ssn": SSN},
            body=json.dumps({"name": NAME, "ssn": SSN, "note": NOTE, "dob": DOB}).encode(),
        )
        bodies.append(response.get_body())
    assert bodies, "no HTTP function was driven"
    with invocation_span(InvocationContext("health"), "health", "http"):
        log.info("driven %d http functions", len(bodies))
    telemetry_capture.flush()
    telemetry_capture.assert_arrived(["Request", "Message"])
    audit_lines = [json.dumps(e.to_record()) for e in audit_events]
    telemetry_capture.assert_no_canaries(extra=[*bodies, *audit_lines])


def test_audit_sink_failure_is_a_503_with_nothing_in_it(telemetry_capture: TelemetryCapture) -> None:
    class Broken:
        def write(self, event: object) -> None:
            raise OSError(EVERYTHING)

    trail = AuditTrail([Broken()], app="canary-app", pseudonymizer=_HmacPseudonymizer())
    with pytest.raises(DependencyUnavailable) as caught:
        trail.record_access(AuditAction.READ, "patient", MRN, None, InvocationContext("patients_read"))
    from shared.problem import problem_response

    response = problem_response(caught.value, "0" * 32)
    assert response.status_code == 503
    telemetry_capture.flush()
    telemetry_capture.assert_arrived(["Message"])  # the sink failure was logged (type only)
    telemetry_capture.assert_no_canaries(extra=[response.get_body(), str(caught.value)])
