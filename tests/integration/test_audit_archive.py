"""The append-only audit archive on a real Azurite: append blobs, one per day per process, JSON lines."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from azure.storage.blob import BlobServiceClient, BlobType

from shared.audit import AuditAction, AuditTrail, install_audit_trail
from shared.audit import audit_trail as default_audit_trail
from shared.audit_event import AuditEvent, AuditEventType, AuditOutcome, AuditSource
from shared.audit_sinks import BlobArchiveAuditSink
from shared.errors import DependencyUnavailable
from shared.storage import get_storage_clients
from tests.conftest import Azurite, InvocationContext, free_port
from tests.fixtures.telemetry import RandomKeyPseudonymizer
from tests.security.phi_canaries import MRN, find_canaries

pytestmark = pytest.mark.integration


def _event(recorded: datetime | None = None) -> AuditEvent:
    return AuditEvent(
        AuditEventType.REST,
        "patients_read",
        AuditAction.READ,
        AuditOutcome.SUCCESS,
        AuditSource("test-app", "patients_read"),
        **({"recorded": recorded} if recorded else {}),
    )


def _container(azurite: Azurite) -> object:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.get_container_client(f"audit-{uuid.uuid4().hex[:12]}")


def test_events_append_as_json_lines_to_one_append_blob_per_day(azurite: Azurite) -> None:
    container = _container(azurite)  # does not exist yet: the sink creates it
    sink = BlobArchiveAuditSink(lambda: container)  # type: ignore[arg-type,return-value]
    day1, day2 = datetime(2030, 1, 31, 23, 59, tzinfo=UTC), datetime(2030, 2, 1, 0, 1, tzinfo=UTC)
    events = [_event(day1), _event(day1), _event(day2)]
    for event in events:
        sink.write(event)

    blobs = {b.name: b for b in container.list_blobs()}  # type: ignore[attr-defined]
    assert set(blobs) == {sink.blob_name(day1), sink.blob_name(day2)}
    assert sink.blob_name(day1).startswith("2030/01/31/") and sink.blob_name(day1).endswith(".jsonl")
    assert all(b.blob_type == BlobType.APPENDBLOB for b in blobs.values())
    lines = container.download_blob(sink.blob_name(day1)).readall().splitlines()  # type: ignore[attr-defined]
    assert [json.loads(line)["event_id"] for line in lines] == [events[0].event_id, events[1].event_id]


def test_a_new_process_never_truncates_an_existing_days_blob(azurite: Azurite) -> None:
    container = _container(azurite)
    first = BlobArchiveAuditSink(lambda: container)  # type: ignore[arg-type,return-value]
    first.write(_event())
    second = BlobArchiveAuditSink(lambda: container)  # type: ignore[arg-type,return-value]
    second._tag = first._tag  # same blob name, as after a restart on the same day
    second.write(_event())
    name = first.blob_name(datetime.now(UTC))
    assert len(container.download_blob(name).readall().splitlines()) == 2  # type: ignore[attr-defined]


def test_default_trail_writes_the_audit_container_from_settings(azurite_env: Azurite) -> None:
    install_audit_trail(None)  # the autouse in-memory trail steps aside: use the one built from settings
    trail = default_audit_trail()
    trail.pseudonymizer = RandomKeyPseudonymizer()
    event = trail.record_access(AuditAction.READ, "patient", MRN, None, InvocationContext("patients_read"))
    container = get_storage_clients().blob.get_container_client("audit")
    blobs = list(container.list_blobs(include=["metadata"]))
    body = b"".join(container.download_blob(b.name).readall() for b in blobs)
    assert event.event_id.encode() in body
    assert not find_canaries([body, *(b.name for b in blobs), *(json.dumps(b.metadata) for b in blobs)])


def test_storage_down_is_dependency_unavailable() -> None:
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=YWJj;"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    )
    container = BlobServiceClient.from_connection_string(dead, retry_total=0).get_container_client("audit")
    trail = AuditTrail([BlobArchiveAuditSink(lambda: container)], app="a")
    with pytest.raises(DependencyUnavailable) as caught:
        trail.record(_event())
    assert caught.value.dependency == "audit"
