"""Service Bus publishing, tested at the SDK's transport boundary.

No broker runs here (there is no usable emulator in CI). The real `ServiceBusClient` is built from the
real settings; only its `get_queue_sender` is replaced by a fake sender that captures the real
`ServiceBusMessage` objects the publisher hands to the SDK. What is asserted is exactly what the SDK
would put on the wire: body, message_id, correlation_id, content type.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusConnectionError

from shared.config import load_settings
from shared.errors import DependencyUnavailable
from shared.messaging import EventPublisher, build_message, build_service_bus_client, get_event_publisher
from shared.schemas.events import DocumentReceived
from tests.conftest import BASE_TEST_ENV

TRACE_ID = uuid.uuid4().hex
TOKEN = "vlocal:" + "ab" * 32


def _event(**overrides: Any) -> DocumentReceived:
    data: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "document_id": str(uuid.uuid4()),
        "patient_token": TOKEN,
        "content_type": "application/pdf",
        "size_bytes": 2048,
        "received_year": datetime.now(UTC).year,
    }
    data.update(overrides)
    return DocumentReceived.model_validate(data)


class FakeSender:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.sent: list[ServiceBusMessage] = []
        self.fail = fail
        self.closed = False

    def __enter__(self) -> FakeSender:
        return self

    def __exit__(self, *_: Any) -> None:
        self.closed = True

    def send_messages(self, message: ServiceBusMessage) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


@pytest.fixture
def client() -> ServiceBusClient:
    return build_service_bus_client(load_settings(BASE_TEST_ENV).service_bus)


def _attach(client: ServiceBusClient, sender: FakeSender, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    queues: list[str] = []

    def get_queue_sender(queue_name: str, **_: Any) -> FakeSender:
        queues.append(queue_name)
        return sender

    monkeypatch.setattr(client, "get_queue_sender", get_queue_sender)
    return queues


def test_publish_sends_a_validated_deidentified_message(
    client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = FakeSender()
    queues = _attach(client, sender, monkeypatch)
    event = _event()
    message_id = EventPublisher(client, "document-events").publish(event, TRACE_ID)

    assert queues == ["document-events"] and sender.closed
    [message] = sender.sent
    assert isinstance(message, ServiceBusMessage)
    assert message.message_id == message_id == event.event_id
    assert message.correlation_id == TRACE_ID
    assert message.content_type == "application/json"
    assert message.subject == "DocumentReceived"
    body = json.loads(b"".join(message.body))
    assert body == event.model_dump(mode="json")
    assert set(body) == {"event_id", "type", "document_id", "patient_token", "content_type", "size_bytes",
                         "received_year"}  # fmt: skip


def test_message_id_is_deterministic_for_duplicate_detection() -> None:
    event = _event()
    assert (
        build_message(event, TRACE_ID).message_id == build_message(event, None).message_id == event.event_id
    )


def test_a_malformed_trace_id_is_not_forwarded() -> None:
    assert build_message(_event(), "not a trace id; Jane Doe").correlation_id is None


def test_an_unvalidated_event_is_revalidated_before_sending() -> None:
    forged = DocumentReceived.model_construct(
        event_id=str(uuid.uuid4()),
        document_id=str(uuid.uuid4()),
        patient_token="MRN123456",  # an identifier where a pseudonym belongs
        content_type="application/pdf",
        size_bytes=1,
        received_year=2024,
    )
    with pytest.raises(ValueError, match="patient_token"):
        build_message(forged, TRACE_ID)


def test_only_outbound_events_may_be_published() -> None:
    with pytest.raises(TypeError):
        build_message({"mrn": "MRN123456"}, TRACE_ID)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field_value",
    [{"patient_token": "Jane Doe"}, {"document_id": "MRN123456"}, {"received_year": "2024-05-01"}],
)
def test_the_event_schema_rejects_identifier_shaped_values(field_value: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(field_value))):
        _event(**field_value)


def test_broker_failure_is_a_503(client: ServiceBusClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _attach(client, FakeSender(ServiceBusConnectionError(message="amqp link detail")), monkeypatch)
    with pytest.raises(DependencyUnavailable) as caught:
        EventPublisher(client, "document-events").publish(_event(), TRACE_ID)
    assert caught.value.dependency == "service_bus" and caught.value.__suppress_context__


class _Credential:
    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("t", 4102444800)


def test_azure_uses_the_namespace_and_the_managed_identity() -> None:
    env = {k: v for k, v in BASE_TEST_ENV.items() if k != "ServiceBusConnection"}
    env["ServiceBusConnection__fullyQualifiedNamespace"] = "sb-phi.servicebus.windows.net"
    credential = _Credential()
    client = build_service_bus_client(load_settings(env).service_bus, lambda: credential)  # type: ignore[arg-type,return-value]
    assert client.fully_qualified_namespace == "sb-phi.servicebus.windows.net"
    assert client._credential is credential


def test_locator_builds_the_publisher_for_the_events_queue(app_env: Any) -> None:
    app_env(SERVICE_BUS_EVENTS_QUEUE="custom-events")
    publisher = get_event_publisher()
    assert publisher._queue == "custom-events"
