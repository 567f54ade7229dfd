"""Audit events: required fields per operation kind, no PHI by construction, fail closed, denials."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.audit import (
    AuditAction,
    AuditActor,
    AuditEntity,
    AuditEvent,
    AuditEventType,
    AuditOutcome,
    AuditSource,
    AuditTrail,
    client_address_from,
    install_audit_trail,
)
from shared.audit_event import AuditEvent as Event
from shared.errors import DependencyUnavailable
from shared.http_route import add_observer, remove_observer
from shared.principal import Principal
from shared.route_audit import TelemetryAuditObserver
from tests.conftest import FunctionDriver, InvocationContext
from tests.fixtures.oidc import OidcServer
from tests.fixtures.telemetry import MemoryAuditSink, RandomKeyPseudonymizer
from tests.security.phi_canaries import EVERYTHING, MRN, NAME, SSN, find_canaries

PRINCIPAL = Principal(
    oid=str(uuid.uuid4()),
    tid=str(uuid.uuid4()),
    azp=str(uuid.uuid4()),
    scopes=frozenset({"Clinical.Access"}),
    roles=frozenset({"Clinician"}),
)
REQUIRED = {
    "schema",
    "event_id",
    "recorded",
    "type",
    "subtype",
    "action",
    "outcome",
    "outcome_code",
    "source_app",
    "source_function",
    "source_trigger",
}


def _trail(sink: MemoryAuditSink, trust: bool = True) -> AuditTrail:
    return AuditTrail(
        [sink], app="test-app", pseudonymizer=RandomKeyPseudonymizer(), trust_forwarded_for=trust
    )


@pytest.mark.parametrize("action", list(AuditAction))
def test_access_events_have_every_required_field(action: AuditAction) -> None:
    sink = MemoryAuditSink()
    trace_id = uuid.uuid4().hex
    context = InvocationContext("patients_op", traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")
    _trail(sink).record_access(
        action, "patient", MRN, PRINCIPAL, context, purpose_of_use="TREAT", forwarded_for="203.0.113.9:4431"
    )
    (event,) = sink.events
    record = event.to_record()
    assert {k for k, v in record.items() if v is not None} >= REQUIRED
    assert record["action"] == action.value
    assert record["outcome"] == "success" and record["outcome_code"] == "0"
    assert record["actor_oid"] == PRINCIPAL.oid and record["actor_tid"] == PRINCIPAL.tid
    assert record["actor_azp"] == PRINCIPAL.azp and record["actor_roles"] == ["Clinician"]
    assert record["purpose_of_use"] == "TREAT"
    assert record["source_function"] == "patients_op"
    assert record["source_invocation_id"] == context.invocation_id
    assert record["trace_id"] == trace_id == record["correlation_id"]
    assert record["client_address"] == "203.0.113.9"
    assert record["entity_type"] == "patient"
    assert str(record["entity_pseudonym"]).startswith("vtest:") and MRN not in json.dumps(record)
    assert record["recorded"].endswith("Z")


def test_same_entity_same_pseudonym_different_kind_different_pseudonym() -> None:
    sink = MemoryAuditSink()
    trail = _trail(sink)
    for kind in ("patient", "patient", "document"):
        trail.record_access(AuditAction.READ, kind, MRN, PRINCIPAL, InvocationContext("x"))
    a, b, c = (e.entity.pseudonym for e in sink.events if e.entity)
    assert a == b != c


def test_trigger_and_batch_events() -> None:
    sink = MemoryAuditSink()
    trail = _trail(sink)
    trail.record_access(
        AuditAction.CREATE,
        "lab_result",
        "LR-1",
        None,
        InvocationContext("lab_results"),
        event_type=AuditEventType.APPLICATION_ACTIVITY,
        trigger="servicebus",
    )
    trail.record_batch(AuditAction.DELETE, "patient", 42, InvocationContext("retention_sweep"))
    trail.record_access(
        AuditAction.EXECUTE,
        "patient",
        "p-1",
        PRINCIPAL,
        InvocationContext("export"),
        event_type=AuditEventType.EXPORT,
    )
    created, swept, exported = (e.to_record() for e in sink.events)
    assert created["source_trigger"] == "servicebus" and created["actor_oid"] is None
    assert swept["entity_count"] == 42 and swept["entity_pseudonym"] is None
    assert swept["type"] == "110100" and swept["source_trigger"] == "timer"
    assert exported["type"] == "110106" and exported["action"] == "E"


def test_denials_record_reason_and_actor_but_no_entity() -> None:
    sink = MemoryAuditSink()
    trail = _trail(sink)
    trail.record_denied("invalid_token", None, InvocationContext("patients_read"))
    trail.record_denied(
        "insufficient_scope", PRINCIPAL, InvocationContext("patients_read"), entity_type="patient"
    )
    unauthenticated, forbidden = (e.to_record() for e in sink.events)
    assert unauthenticated["outcome"] == "denied" and unauthenticated["outcome_code"] == "4"
    assert unauthenticated["actor_oid"] is None and unauthenticated["outcome_reason"] == "invalid_token"
    assert forbidden["actor_oid"] == PRINCIPAL.oid and forbidden["entity_pseudonym"] is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: AuditEntity(type="patient", pseudonym=MRN),  # a raw id is not a pseudonym
        lambda: AuditEntity(type=f"patient {NAME}"),
        lambda: AuditActor(oid=NAME, tid=str(uuid.uuid4()), azp=str(uuid.uuid4())),
        lambda: AuditActor(
            oid=str(uuid.uuid4()), tid=str(uuid.uuid4()), azp=str(uuid.uuid4()), roles=(NAME,)
        ),
        lambda: AuditSource(app="a", function=f"read {SSN}"),
        lambda: Event(
            AuditEventType.REST,
            "x",
            AuditAction.READ,
            AuditOutcome.SUCCESS,
            AuditSource("a", "f"),
            outcome_reason=EVERYTHING,
        ),
        lambda: Event(
            AuditEventType.REST,
            "x",
            AuditAction.READ,
            AuditOutcome.SUCCESS,
            AuditSource("a", "f"),
            purpose_of_use="treatment of Zebulon",
        ),
        lambda: Event(
            AuditEventType.REST,
            "x",
            AuditAction.READ,
            AuditOutcome.SUCCESS,
            AuditSource("a", "f"),
            client_address=SSN,
        ),
        lambda: Event(
            AuditEventType.REST,
            "x",
            AuditAction.READ,
            AuditOutcome.SUCCESS,
            AuditSource("a", "f"),
            recorded=datetime.now(timezone(timedelta(hours=2))),
        ),
    ],
)
def test_phi_cannot_be_put_into_an_event(build: object) -> None:
    with pytest.raises(ValueError, match=r"format|UTC|does not appear"):
        build()  # type: ignore[operator]


def test_without_a_pseudonymizer_an_entity_id_fails_closed() -> None:
    sink = MemoryAuditSink()
    trail = AuditTrail([sink], app="a")
    with pytest.raises(DependencyUnavailable):
        trail.record_access(AuditAction.READ, "patient", MRN, PRINCIPAL, InvocationContext("x"))
    assert sink.events == []


def test_sink_failure_fails_closed_after_trying_in_order() -> None:
    class Broken:
        def write(self, event: AuditEvent) -> None:
            raise OSError(EVERYTHING)

    after = MemoryAuditSink()
    trail = AuditTrail([Broken(), after], app="a", pseudonymizer=RandomKeyPseudonymizer())
    with pytest.raises(DependencyUnavailable) as caught:
        trail.record_access(AuditAction.READ, "patient", MRN, PRINCIPAL, InvocationContext("x"))
    assert caught.value.status == 503 and caught.value.__cause__ is None
    assert after.events == []  # nothing claims an access the archive did not record
    assert not find_canaries([str(caught.value), repr(caught.value)])


@pytest.mark.parametrize(
    ("header", "trust", "expected"),
    [
        ("203.0.113.9", True, "203.0.113.9"),
        ("203.0.113.9:51234, 10.0.0.4", True, "203.0.113.9"),
        ("[2001:db8::1]:443, 10.0.0.4", True, "2001:db8::1"),
        ("2001:db8::1", True, "2001:db8::1"),
        ("not-an-ip, 10.0.0.4", True, None),
        ("203.0.113.9", False, None),  # untrusted: record nothing rather than a spoofable value
        (None, True, None),
    ],
)
def test_client_address_honours_the_trust_setting(
    header: str | None, trust: bool, expected: str | None
) -> None:
    assert client_address_from(header, trust) == expected


def test_recorded_is_utc_now() -> None:
    event = Event(AuditEventType.REST, "x", AuditAction.READ, AuditOutcome.SUCCESS, AuditSource("a", "f"))
    assert event.recorded.tzinfo is UTC and abs(datetime.now(UTC) - event.recorded) < timedelta(minutes=1)


# ------------------------------------------------------------------- through the PHI route pipeline
@pytest.fixture
def observer() -> Iterator[TelemetryAuditObserver]:
    """The process-wide observer (function_app may already have registered it: equal, so not twice)."""
    import shared.http_route as http_route

    already = TelemetryAuditObserver() in http_route._OBSERVERS
    obs = TelemetryAuditObserver()
    add_observer(obs)
    yield obs
    if not already:
        remove_observer(obs)


@pytest.mark.usefixtures("observer")
def test_401_and_403_on_phi_routes_are_audited(
    oidc: OidcServer, probe_driver: FunctionDriver, audit_events: list[AuditEvent]
) -> None:
    unauthenticated = probe_driver.http(
        "GET", f"probe/patients/{uuid.uuid4()}", headers={"X-Forwarded-For": "198.51.100.7"}
    )
    forbidden = probe_driver.http(
        "GET", f"probe/documents/{uuid.uuid4()}", headers=oidc.bearer(roles=["Intake"])
    )
    assert (unauthenticated.status_code, forbidden.status_code) == (401, 403)
    first, second = (e.to_record() for e in audit_events)
    assert first["outcome"] == "denied" and first["outcome_reason"] == "invalid_token"
    assert first["actor_oid"] is None and first["client_address"] == "198.51.100.7"
    assert first["source_function"] == "probe_read"
    assert second["outcome_reason"] == "insufficient_scope" and second["actor_tid"] == oidc.tenant_id


@pytest.mark.usefixtures("observer")
def test_denial_that_cannot_be_audited_is_a_503(oidc: OidcServer, probe_driver: FunctionDriver) -> None:
    class Broken:
        def write(self, event: AuditEvent) -> None:
            raise OSError("storage down")

    install_audit_trail(AuditTrail([Broken()], app="a"))
    response = probe_driver.http(
        "GET", f"probe/documents/{uuid.uuid4()}", headers=oidc.bearer(roles=["Intake"])
    )
    assert response.status_code == 503
    assert json.loads(response.get_body())["code"] == "dependency_unavailable"
