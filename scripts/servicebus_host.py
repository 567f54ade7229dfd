"""The Functions host's side of Service Bus SDK-type bindings, for runs without the host (demo, tests).

- `received_message` frames a real AMQP message (encoded with uamqp, the decoder the binding uses) as
  the host's model-binding data (lock token, `x-opt-lock-token`, AMQP bytes) and runs the extension's
  own `ServiceBusConverter`: the result is exactly the `azure.servicebus.ServiceBusReceivedMessage`
  the worker hands to the function.
- `SettlementServer` implements the extension's `Settlement` gRPC service (its generated protos) and
  records every request; `serve_settlement` runs it on loopback and points the extension's real
  `ServiceBusMessageActions` at it the way the host does, through the worker's command-line arguments
  `--host/--port/--functions-grpc-max-message-length`.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import uamqp
from azure.servicebus import ServiceBusReceivedMessage
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from azurefunctions.extensions.bindings.servicebus import (
    ServiceBusClientConverter,
    ServiceBusConverter,
    ServiceBusMessageActions,
)
from azurefunctions.extensions.bindings.servicebus import (
    ServiceBusReceivedMessage as BindingReceivedMessage,
)
from google.protobuf import empty_pb2
from uamqp.message import MessageHeader, MessageProperties

GRPC_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024


@dataclass(frozen=True)
class SettlementCall:
    method: str  # Complete / Deadletter / Abandon / Defer
    lock_token: str
    reason: str | None = None
    description: str | None = None


class SettlementServer(settlement_pb2_grpc.SettlementServicer):  # type: ignore[misc]
    """The host's side of the extension's `Settlement` gRPC service: records every request.

    `fail_with` makes every call answer with that status (a host that cannot settle: lock lost, down).
    """

    def __init__(self) -> None:
        self.calls: list[SettlementCall] = []
        self.fail_with: grpc.StatusCode | None = None

    def _record(self, call: SettlementCall, context: grpc.ServicerContext) -> empty_pb2.Empty:
        if self.fail_with is not None:
            context.abort(self.fail_with, "settlement refused by the test")
        self.calls.append(call)
        return empty_pb2.Empty()

    def Complete(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return self._record(SettlementCall("Complete", request.locktoken), context)

    def Abandon(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return self._record(SettlementCall("Abandon", request.locktoken), context)

    def Defer(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return self._record(SettlementCall("Defer", request.locktoken), context)

    def Deadletter(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        reason = request.deadletterReason.value if request.HasField("deadletterReason") else None
        description = (
            request.deadletterErrorDescription.value
            if request.HasField("deadletterErrorDescription")
            else None
        )
        return self._record(SettlementCall("Deadletter", request.locktoken, reason, description), context)

    def for_token(self, lock_token: Any) -> list[SettlementCall]:
        return [c for c in self.calls if c.lock_token == str(lock_token)]


@dataclass(frozen=True)
class ModelBindingData:
    """The worker's `ModelBindingData` protobuf fields, as the host fills them for a Service Bus message."""

    content: bytes
    version: str = "1.0"
    source: str = "AzureServiceBusReceivedMessage"
    content_type: str = "application/octet-stream"


def amqp_binding_data(amqp_message: uamqp.Message, lock_token: uuid.UUID) -> ModelBindingData:
    """Frame an AMQP message as the host does: the lock token (16 bytes, .NET Guid byte order, i.e.
    little-endian), the marker `x-opt-lock-token`, then the encoded AMQP message."""
    return ModelBindingData(lock_token.bytes_le + b"x-opt-lock-token" + amqp_message.encode_message())


def received_message(
    body: dict[str, Any] | bytes,
    *,
    delivery_count: int = 0,
    message_id: str | None = None,
    lock_token: uuid.UUID | None = None,
) -> ServiceBusReceivedMessage:
    """The `ServiceBusReceivedMessage` the worker builds for one delivery of `body`.

    `delivery_count` is the AMQP header value: prior delivery attempts, so 0 on a first delivery."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = MessageHeader()
    header.delivery_count = delivery_count
    amqp = uamqp.Message(
        body=raw,
        properties=MessageProperties(
            message_id=message_id or uuid.uuid4().hex, content_type="application/json"
        ),
        header=header,
    )
    data = Datum(amqp_binding_data(amqp, lock_token or uuid.uuid4()), "model_binding_data")
    message = ServiceBusConverter.decode(data, trigger_metadata={}, pytype=BindingReceivedMessage)
    if not isinstance(message, ServiceBusReceivedMessage):
        raise TypeError("the binding's converter did not produce a ServiceBusReceivedMessage")
    return message


@contextmanager
def serve_settlement(port: int) -> Iterator[tuple[SettlementServer, Any]]:
    """Run the Settlement service on 127.0.0.1:`port`; yield it and the worker's settlement client.

    The extension reads the host's address from `sys.argv` and keeps one client per process: both are
    set here and restored on exit.
    """
    recorder = SettlementServer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    settlement_pb2_grpc.add_SettlementServicer_to_server(recorder, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    saved_argv, saved_instance = sys.argv, ServiceBusMessageActions._instance
    sys.argv = [sys.argv[0], "--host", "127.0.0.1", "--port", str(port),
                "--functions-grpc-max-message-length", str(GRPC_MAX_MESSAGE_LENGTH)]  # fmt: skip
    ServiceBusMessageActions._instance = None
    try:
        yield recorder, ServiceBusClientConverter.get_client()  # what the worker passes to `message_actions`
    finally:
        sys.argv, ServiceBusMessageActions._instance = saved_argv, saved_instance
        server.stop(grace=None).wait()
