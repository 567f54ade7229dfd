"""Service Bus settlement for triggers bound with `auto_complete_messages=False` (SDK-type bindings).

Usage::

    @bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE, connection="ServiceBusConnection",
                                  auto_complete_messages=False)
    def lab_results(msg: servicebus.ServiceBusReceivedMessage,
                    message_actions: servicebus.ServiceBusMessageActions, context: func.Context) -> None:
        run_settled_trigger(context, msg, message_actions, process, entity_type="lab_result")

The message is the `azure.servicebus.ServiceBusReceivedMessage` that the worker builds from the host's
model-binding data (AMQP bytes plus lock token); `message_actions` talks gRPC to the host's Settlement
service, which settles the message on the host's own receiver (docs/workload.md, "Service Bus
settlement"). On top of `shared.trigger_route.run_trigger` (span, correlation id, audit, PHI-free
logs) this adds exactly one settlement per outcome:

- success: `complete`, once, after the work (so after its audit record);
- `PermanentMessageError` (invalid, unknown id, a body that is not AMQP data): audited as a failure,
  then `deadletter` with `deadletter_reason` = the stable code (`shared.scrub.safe_reason`) and a fixed
  description naming only the correlation id, so the dead-lettered message joins the audit record
  and carries nothing from the message. The first delivery is the last: no retries;
- anything else: no settlement, the error is raised (as a stable code). With the message unsettled,
  the host's Service Bus processor abandons it (it does so on a handler exception whatever
  `autoCompleteMessages` says), so it is redelivered and the queue's `maxDeliveryCount` bounds it.
  An explicit `abandon` would add a gRPC round trip and a second settlement path for nothing.

A settlement call that fails (host unreachable, lock lost) raises `SettlementFailed`
(`settlement_failed`): the message stays locked, reappears after the lock expires, and the work is
idempotent (upsert on order and version), so the retry changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from azure.servicebus.amqp import AmqpMessageBodyType

from shared.errors import DependencyUnavailable, PermanentMessageError
from shared.scrub import exception_type_name, safe, safe_reason
from shared.trigger_route import TriggerContext, run_trigger

logger = logging.getLogger(__name__)

DEADLETTER_DESCRIPTION = (
    "Rejected permanently by {function}; see the audit trail, correlation id {correlation}"
)


class MessageActions(Protocol):
    """The settlement calls we make (the SDK-type binding's `ServiceBusMessageActions` has them)."""

    def complete(self, message: Any) -> None: ...

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None: ...


class SettlementFailed(DependencyUnavailable):
    """The host did not settle the message: raised for a redelivery (the work is idempotent)."""

    code = "settlement_failed"

    def __init__(self) -> None:
        super().__init__("service_bus_settlement", "settlement_failed")


def message_body(message: Any) -> bytes:
    """The AMQP data body as bytes. A value or sequence body can never be a lab result: permanent."""
    if getattr(message, "body_type", AmqpMessageBodyType.DATA) != AmqpMessageBodyType.DATA:
        raise PermanentMessageError("unsupported_message_body")
    body = message.body
    if isinstance(body, bytes):
        return body
    try:
        parts = list(body)
    except TypeError:
        raise PermanentMessageError("unsupported_message_body") from None
    if not all(isinstance(part, bytes) for part in parts):
        raise PermanentMessageError("unsupported_message_body")
    return b"".join(parts)


def deadletter_description(ctx: TriggerContext) -> str:
    # Only code-chosen text and the trace id (32 hex): the broker shows this to operators.
    return DEADLETTER_DESCRIPTION.format(function=safe(ctx.function_name), correlation=ctx.correlation_id)


def _settle(operation: str, call: Callable[[], None], ctx: TriggerContext) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - SettlementError's text carries the lock token and gRPC details
        logger.warning(
            "%s could not %s message %s (%s); it will be redelivered",
            safe(ctx.function_name),
            safe(operation),
            ctx.message_id,
            exception_type_name(exc),
        )
        raise SettlementFailed() from None


def run_settled_trigger[T](
    context: Any,
    message: Any,
    actions: MessageActions,
    work: Callable[[bytes, TriggerContext], T],
    *,
    entity_type: str | None = None,
) -> T | None:
    """Run `work(body, ctx)` under `run_trigger` and settle `message` once for its outcome."""

    def work_then_complete(ctx: TriggerContext) -> T:
        result = work(message_body(message), ctx)
        _settle("complete", lambda: actions.complete(message), ctx)
        return result

    def dead_letter(ctx: TriggerContext, error: PermanentMessageError) -> None:
        _settle(
            "dead-letter",
            lambda: actions.deadletter(
                message,
                deadletter_reason=safe_reason(error.code),
                deadletter_error_description=deadletter_description(ctx),
            ),
            ctx,
        )

    message_id = message.message_id
    return run_trigger(
        context,
        "servicebus",
        work_then_complete,
        entity_type=entity_type,
        message_id=None if message_id is None else str(message_id),
        delivery_count=message.delivery_count,
        on_permanent=dead_letter,
    )
