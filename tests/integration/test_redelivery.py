"""Redelivery and poison handling, on real Azurite queues and embedded SQLite.

Queue messages are real Azurite messages (sent by the upload route or by the test, received with the
SDK). Service Bus has no broker here: lab-results messages are real AMQP messages decoded by the
SDK-type binding's own converter, and their settlement goes over real gRPC to a loopback `Settlement`
server standing in for the host (`tests.fixtures.workload`); sends are captured at the SDK's transport
boundary (`sent_events`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid

import grpc
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.servicebus.exceptions import ServiceBusConnectionError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient

from shared.audit import AuditAction, AuditEvent, AuditOutcome
from shared.config import get_settings
from shared.data import get_repositories
from shared.errors import DependencyUnavailable
from shared.queues import poison_queue_name
from shared.settlement import SettlementFailed
from shared.storage import get_storage_clients
from tests.fixtures.workload import (
    Clinical,
    SentEvents,
    SettlementCall,
    lab_message,
    lab_result_body,
    take_intake_message,
)


def _upload(clinical: Clinical) -> tuple[str, str]:
    patient_id = clinical.create_patient()
    response = clinical.upload(patient_id)
    assert response.status_code == 202
    return patient_id, json.loads(response.get_body())["documentId"]


def _poison(clinical: Clinical) -> list[bytes]:
    queue = QueueClient.from_connection_string(
        clinical.azurite.connection_string,
        poison_queue_name(get_settings().storage.document_intake_queue),
        message_decode_policy=BinaryBase64DecodePolicy(),
    )
    try:
        return [bytes(m.content) for m in queue.peek_messages(max_messages=32)]
    except Exception:
        return []


def _send_raw(text: str) -> QueueMessage:
    queue = get_storage_clients().queue_client(get_settings().storage.document_intake_queue)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    queue.send_message(text)
    return take_intake_message()


# --------------------------------------------------------------------------------- storage queue
def test_same_queue_message_twice_publishes_and_writes_once(
    clinical: Clinical, sent_events: SentEvents, audit_events: list[AuditEvent]
) -> None:
    _, document_id = _upload(clinical)
    message = take_intake_message()
    clinical.driver.queue("document_intake", message)
    again = QueueMessage(id=message.id, body=message.get_body(), dequeue_count=2)
    clinical.driver.queue("document_intake", again)
    assert len(sent_events.messages) == 1
    updates = [e for e in audit_events if e.action is AuditAction.UPDATE]
    assert len(updates) == 1
    assert get_repositories().documents.find(document_id).status == "processed"  # type: ignore[union-attr]
    assert _poison(clinical) == []


def test_transient_publish_failure_is_retried_then_succeeds_with_the_same_event_id(
    clinical: Clinical, sent_events: SentEvents, audit_events: list[AuditEvent]
) -> None:
    _, document_id = _upload(clinical)
    message = take_intake_message()
    sent_events.fail_with = ServiceBusConnectionError(message="broker down")
    with pytest.raises(DependencyUnavailable):
        clinical.driver.queue("document_intake", message)
    assert get_repositories().documents.find(document_id).status == "received"  # type: ignore[union-attr]
    assert not [e for e in audit_events if e.action is AuditAction.UPDATE]
    sent_events.fail_with = None
    clinical.driver.queue(
        "document_intake", QueueMessage(id=message.id, body=message.get_body(), dequeue_count=2)
    )
    assert len(sent_events.messages) == 1
    assert get_repositories().documents.find(document_id).status == "processed"  # type: ignore[union-attr]


def test_event_id_is_stable_across_deliveries(clinical: Clinical, sent_events: SentEvents) -> None:
    """If the record could not be marked after publishing, the re-send carries the same message_id."""
    from functions.document_intake import EVENT_NAMESPACE

    _, document_id = _upload(clinical)
    clinical.driver.queue("document_intake", take_intake_message())
    assert sent_events.messages[0].message_id == str(
        uuid.uuid5(EVENT_NAMESPACE, f"DocumentReceived:{document_id}")
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all: Avery Synthetic MRN123456789", "malformed_message"),
        ('{"documentId": "not-a-uuid"}', "malformed_message"),
        (json.dumps({"documentId": str(uuid.uuid4()), "mrn": "MRN123456789"}), "malformed_message"),
        (json.dumps({"documentId": str(uuid.uuid4())}), "unknown_document"),
    ],
)
def test_message_that_can_never_succeed_goes_to_poison_once_without_retries(
    clinical: Clinical,
    sent_events: SentEvents,
    audit_events: list[AuditEvent],
    caplog: pytest.LogCaptureFixture,
    text: str,
    reason: str,
) -> None:
    message = _send_raw(text)
    with caplog.at_level(logging.DEBUG):
        clinical.driver.queue("document_intake", message)  # returns: the host deletes the original
    assert _poison(clinical) == [text.encode()]  # nothing lost: the original bytes, exactly once
    assert sent_events.messages == []
    (failure,) = audit_events
    assert failure.outcome is AuditOutcome.FAILURE and failure.outcome_reason == reason
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert reason in logged
    for fragment in ("Avery", "MRN123456789", "not-a-uuid"):
        assert fragment not in logged and fragment not in json.dumps(failure.to_record(), default=str)


def test_tampered_blob_is_poisoned_and_nothing_is_half_written(
    clinical: Clinical, sent_events: SentEvents
) -> None:
    _, document_id = _upload(clinical)
    record = get_repositories().documents.find(document_id)
    assert record is not None
    blob = BlobServiceClient.from_connection_string(clinical.azurite.connection_string).get_blob_client(
        get_settings().storage.phi_container, record.blob_name
    )
    blob.upload_blob(b"%PDF-1.7 altered after upload", overwrite=True)
    clinical.driver.queue("document_intake", take_intake_message())
    assert get_repositories().documents.find(document_id).status == "received"  # type: ignore[union-attr]
    assert sent_events.messages == []
    assert [json.loads(m) for m in _poison(clinical)] == [{"documentId": document_id}]


def test_poison_queue_unavailable_means_retry_not_loss(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.queues

    message = _send_raw("garbage")

    def down(*_: object, **__: object) -> object:
        raise DependencyUnavailable("storage")

    monkeypatch.setattr(shared.queues, "_with_queue", down)
    with pytest.raises(DependencyUnavailable):
        clinical.driver.queue("document_intake", message)  # the host keeps the message and retries


# ----------------------------------------------------------------------------------- service bus
def test_same_lab_message_twice_writes_once(clinical: Clinical, audit_events: list[AuditEvent]) -> None:
    from shared.data import get_repositories as repos

    patient_id = clinical.create_patient(mrn="MRN000424242")
    body = lab_result_body("MRN000424242")
    first_delivery = lab_message(body, message_id="m-1")
    clinical.driver.service_bus("lab_results", first_delivery)
    first = repos().lab_results.get(body["lab_order_id"])
    redelivery = lab_message(body, message_id="m-1", delivery_count=2)
    clinical.driver.service_bus("lab_results", redelivery)
    second = repos().lab_results.get(body["lab_order_id"])
    assert first is not None and first == second  # same row, same received_at: not rewritten
    assert [r.lab_order_id for r in repos().lab_results.list_for_patient(patient_id)] == [
        body["lab_order_id"]
    ]
    # A corrected result (higher version) replaces it; a late older version changes nothing.
    clinical.driver.service_bus("lab_results", lab_message({**body, "version": 2, "value": "101"}))
    clinical.driver.service_bus("lab_results", lab_message({**body, "version": 1, "value": "55"}))
    final = repos().lab_results.get(body["lab_order_id"])
    assert final is not None and (final.version, final.value) == (2, "101")
    actions = [e.action for e in audit_events if e.entity and e.entity.type == "lab_result"]
    # create, at-least-once re-audit of the redelivery, update; the stale version is not an access
    assert actions == [AuditAction.CREATE, AuditAction.UPDATE, AuditAction.UPDATE]
    # Every delivery, the unchanged stale one included, is completed exactly once and nothing else.
    assert [c.method for c in clinical.settlement.calls] == ["Complete"] * 4
    assert clinical.settlement.server.for_token(first_delivery.lock_token) == [
        SettlementCall("Complete", str(first_delivery.lock_token))
    ]
    assert len(clinical.settlement.server.for_token(redelivery.lock_token)) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_lab_result"),
        (json.dumps(lab_result_body("MRN000555111", value="Avery; DROP")).encode(), "invalid_lab_result"),
        (
            json.dumps({**lab_result_body("MRN000555111"), "ssn": "123-45-6789"}).encode(),
            "invalid_lab_result",
        ),
        (json.dumps(lab_result_body("MRN000999888")).encode(), "unknown_patient"),
    ],
)
def test_invalid_lab_message_is_dead_lettered_on_first_delivery_and_writes_nothing(
    clinical: Clinical,
    audit_events: list[AuditEvent],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    reason: str,
) -> None:
    clinical.create_patient(mrn="MRN000555111")
    audit_events.clear()
    message = lab_message(body)  # delivery 1
    with caplog.at_level(logging.DEBUG):
        assert clinical.driver.service_bus("lab_results", message) is None  # settled, nothing to retry
    (failure,) = audit_events
    assert failure.outcome is AuditOutcome.FAILURE and failure.outcome_reason == reason
    # Dead-lettered over the settlement channel on this first delivery, with the code as the reason and
    # a fixed description naming only the correlation id of the audit record: nothing from the message.
    (call,) = clinical.settlement.calls
    assert (call.method, call.lock_token, call.reason) == ("Deadletter", str(message.lock_token), reason)
    assert call.description == (
        f"Rejected permanently by lab_results; see the audit trail, correlation id {failure.correlation_id}"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", failure.correlation_id)
    from shared.data import get_repositories as repos

    patient = repos().patients.find_by_mrn("MRN000555111")
    assert patient is not None and repos().lab_results.list_for_patient(patient.id) == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    for fragment in ("Avery", "123-45-6789", "MRN000999888", "MRN000555111"):
        assert fragment not in logged
        assert fragment not in f"{call.reason} {call.description}"


def test_transient_sql_failure_on_lab_message_is_retried(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.lab_results as module

    clinical.create_patient(mrn="MRN000313131")
    body = lab_result_body("MRN000313131")
    real = module.get_repositories

    class Down:
        def __getattr__(self, name: str) -> object:
            raise DependencyUnavailable("sql")

    monkeypatch.setattr(module, "get_repositories", lambda: Down())
    lock = uuid.uuid4()
    with pytest.raises(DependencyUnavailable):
        clinical.driver.service_bus("lab_results", lab_message(body, lock_token=lock))
    # Not settled: the host abandons an unsettled message when the function fails, and the queue's
    # maxDeliveryCount bounds the redeliveries. Never dead-lettered for a transient failure.
    assert clinical.settlement.calls == []
    monkeypatch.setattr(module, "get_repositories", real)
    clinical.driver.service_bus("lab_results", lab_message(body, delivery_count=2, lock_token=lock))
    assert real().lab_results.get(body["lab_order_id"]) is not None
    assert clinical.settlement.calls == [SettlementCall("Complete", str(lock))]


def test_failed_settlement_is_retried_and_the_retry_writes_nothing_twice(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    """The host cannot complete (lock lost, host gone): a stable `settlement_failed` for a retry, and
    the redelivery finds the row already written (idempotent), re-audits it (at-least-once) and
    completes it."""
    clinical.create_patient(mrn="MRN000717171")
    body = lab_result_body("MRN000717171")
    clinical.settlement.server.fail_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(SettlementFailed) as raised:
        clinical.driver.service_bus("lab_results", lab_message(body))
    assert str(raised.value) == "settlement_failed" and raised.value.__cause__ is None
    assert clinical.settlement.calls == []
    clinical.settlement.server.fail_with = None
    clinical.driver.service_bus("lab_results", lab_message(body, delivery_count=2))
    assert [c.method for c in clinical.settlement.calls] == ["Complete"]
    rows = get_repositories().lab_results.list_for_patient(
        get_repositories().patients.find_by_mrn("MRN000717171").id  # type: ignore[union-attr]
    )
    assert [r.lab_order_id for r in rows] == [body["lab_order_id"]]
    actions = [e.action for e in audit_events if e.entity and e.entity.type == "lab_result"]
    assert actions == [AuditAction.CREATE, AuditAction.UPDATE]


def test_failed_dead_letter_is_retried_then_dead_lettered(clinical: Clinical) -> None:
    message = lab_message(b"{not json")
    clinical.settlement.server.fail_with = grpc.StatusCode.NOT_FOUND  # e.g. the lock was lost
    with pytest.raises(SettlementFailed):
        clinical.driver.service_bus("lab_results", message)
    clinical.settlement.server.fail_with = None
    clinical.driver.service_bus("lab_results", lab_message(b"{not json", delivery_count=2))
    assert [(c.method, c.reason) for c in clinical.settlement.calls] == [("Deadletter", "invalid_lab_result")]


def test_amqp_value_body_is_dead_lettered_as_unsupported(clinical: Clinical) -> None:
    """A lab system sending an AMQP value body (not data) can never succeed: dead-lettered at once."""
    import uamqp
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.servicebus import ServiceBusConverter, ServiceBusReceivedMessage
    from uamqp.constants import MessageBodyType

    from scripts.servicebus_host import amqp_binding_data

    amqp = uamqp.Message(body={"patient_mrn": "MRN000555111"}, body_type=MessageBodyType.Value)
    message = ServiceBusConverter.decode(
        Datum(amqp_binding_data(amqp, uuid.uuid4()), "model_binding_data"),
        trigger_metadata={},
        pytype=ServiceBusReceivedMessage,
    )
    clinical.driver.service_bus("lab_results", message)
    assert [(c.method, c.reason) for c in clinical.settlement.calls] == [
        ("Deadletter", "unsupported_message_body")
    ]
