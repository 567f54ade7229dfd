"""Redelivery and poison handling, on real Azurite queues and embedded SQLite.

Queue messages are real Azurite messages (sent by the upload route or by the test, received with the
SDK). Service Bus has no broker here: messages are built as `azure.functions` ServiceBusMessage
objects, and sends are captured at the SDK's transport boundary (`sent_events`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.servicebus.exceptions import ServiceBusConnectionError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient

from shared.audit import AuditAction, AuditEvent, AuditOutcome
from shared.config import get_settings
from shared.data import get_repositories
from shared.errors import DependencyUnavailable, PermanentMessageError
from shared.queues import poison_queue_name
from shared.storage import get_storage_clients
from tests.fixtures.workload import Clinical, SentEvents, lab_message, lab_result_body, take_intake_message


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
    clinical.driver.service_bus("lab_results", lab_message(body, message_id="m-1"))
    first = repos().lab_results.get(body["lab_order_id"])
    clinical.driver.service_bus("lab_results", lab_message(body, message_id="m-1", delivery_count=2))
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
def test_invalid_lab_message_is_refused_permanently_and_writes_nothing(
    clinical: Clinical,
    audit_events: list[AuditEvent],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    reason: str,
) -> None:
    clinical.create_patient(mrn="MRN000555111")
    audit_events.clear()
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentMessageError) as raised:
        clinical.driver.service_bus("lab_results", lab_message(body))
    assert raised.value.code == reason and str(raised.value) == reason
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    (failure,) = audit_events
    assert failure.outcome is AuditOutcome.FAILURE and failure.outcome_reason == reason
    from shared.data import get_repositories as repos

    patient = repos().patients.find_by_mrn("MRN000555111")
    assert patient is not None and repos().lab_results.list_for_patient(patient.id) == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    for fragment in ("Avery", "123-45-6789", "MRN000999888", "MRN000555111"):
        assert fragment not in logged


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
    with pytest.raises(DependencyUnavailable):
        clinical.driver.service_bus("lab_results", lab_message(body))
    monkeypatch.setattr(module, "get_repositories", real)
    clinical.driver.service_bus("lab_results", lab_message(body, delivery_count=2))
    assert real().lab_results.get(body["lab_order_id"]) is not None
