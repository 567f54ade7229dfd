"""Service Bus publisher for outbound, de-identified events.

- Azure: `ServiceBusClient(fully_qualified_namespace, credential)` on the managed identity.
  Locally: the emulator connection string (Development only; `shared.config` enforces that).
- `message_id` is the event id, so the broker's duplicate detection drops a re-send of the same event.
- `correlation_id` is the W3C trace id of the invocation, so the consumer's spans join the trace.
- Bodies are validated against the event's schema (an `OutboundEvent`, which cannot declare identifier
  fields) right before sending: only de-identified or pseudonymous data leaves.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from azure.core.credentials import TokenCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusError

from shared.config import ServiceBusSettings, get_settings
from shared.errors import DependencyUnavailable
from shared.identity import get_credential
from shared.schemas.events import OutboundEvent

logger = logging.getLogger(__name__)

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def build_message(event: OutboundEvent, trace_id: str | None) -> ServiceBusMessage:
    if not isinstance(event, OutboundEvent):
        raise TypeError("only OutboundEvent instances may be published")
    # Re-validate from a plain dump: a model built with model_construct() skips validation.
    checked = type(event).model_validate(event.model_dump())
    body = json.dumps(checked.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    event_id = str(checked.model_dump()["event_id"])
    correlation = trace_id if trace_id is not None and _TRACE_ID.match(trace_id) else None
    return ServiceBusMessage(
        body,
        message_id=event_id,
        correlation_id=correlation,
        content_type="application/json",
        subject=type(event).event_type,
        application_properties={"schema": type(event).event_type, "schemaVersion": "1"},
    )


def build_service_bus_client(
    settings: ServiceBusSettings, credential_factory: Callable[[], TokenCredential] = get_credential
) -> ServiceBusClient:
    if settings.connection_string is not None:
        return ServiceBusClient.from_connection_string(settings.connection_string)
    if settings.fully_qualified_namespace is None:
        raise ValueError("ServiceBusConnection__fullyQualifiedNamespace is required")  # config enforces it
    return ServiceBusClient(settings.fully_qualified_namespace, credential_factory())


class EventPublisher:
    def __init__(self, client: Any, queue: str) -> None:
        self._client = client
        self._queue = queue

    def publish(self, event: OutboundEvent, trace_id: str | None) -> str:
        """Send one event; returns its message_id. Broker trouble -> DependencyUnavailable (retry later)."""
        message = build_message(event, trace_id)
        try:
            with self._client.get_queue_sender(self._queue) as sender:
                sender.send_messages(message)
        except ServiceBusError as exc:
            logger.warning("Service Bus send failed", extra={"error_type": type(exc).__name__})
            raise DependencyUnavailable("service_bus") from None
        return str(message.message_id)


@lru_cache(maxsize=1)
def get_service_bus_client() -> ServiceBusClient:
    return build_service_bus_client(get_settings().service_bus)


@lru_cache(maxsize=1)
def get_event_publisher() -> EventPublisher:
    return EventPublisher(get_service_bus_client(), get_settings().service_bus.events_queue)
