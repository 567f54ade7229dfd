"""THE pipeline for queue, Service Bus and timer functions (the non-HTTP mirror of `shared.http_route`).

Usage::

    @bp.queue_trigger(arg_name="msg", queue_name="document-intake", connection="PhiStorage")
    def document_intake(msg: func.QueueMessage, context: func.Context) -> None:
        run_trigger(
            context, "queue", lambda ctx: handle(msg.get_body(), ctx),
            entity_type="document", message_id=msg.id, delivery_count=msg.dequeue_count,
            on_permanent=lambda ctx, error: move_to_poison(QUEUE, msg.get_body(), msg.id, error.code),
        )

What it guarantees:
- the work runs in an invocation span continuing the host's trace (`faas.trigger`, invocation id,
  delivery count), and `TriggerContext.correlation_id` is that trace id, so the audit record, the logs
  and any event published downstream join the same trace;
- nothing from the message reaches a log: only the function name, stable error codes and ids that
  are uuids/hex (the log scrubber drops anything else);
- `PermanentMessageError` (malformed, unknown id, failed validation: can never succeed) is audited as a
  failure with its reason code, then handed to `on_permanent` (e.g. move the message to the poison
  queue and return, so the host deletes it: no pointless retries). Without `on_permanent` it is
  re-raised, and the host's retry limit (`maxDequeueCount` / `maxDeliveryCount`) parks the message;
- any other failure is re-raised for the host to retry, as an exception whose text is a stable code:
  the original exception (whose message may quote the payload) is never chained, so the worker's own
  error log cannot leak it. `DependencyUnavailable` keeps its code (`dependency_unavailable`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.audit import AuditAction, AuditEventType, AuditOutcome, audit_trail
from shared.errors import AppError, PermanentMessageError
from shared.http_route import correlation_id_from
from shared.scrub import exception_type_name, safe, safe_reason
from shared.telemetry.context import invocation_span

logger = logging.getLogger(__name__)

TRIGGER_KINDS = frozenset({"queue", "servicebus", "timer"})


@dataclass(frozen=True)
class TriggerContext:
    """Per-invocation facts for trigger work (and for `audit_trail().record_*`, which reads these names)."""

    correlation_id: str
    function_name: str
    invocation_id: str
    trace_parent: str | None
    trigger: str
    message_id: str | None = None
    delivery_count: int | None = None

    @property
    def trace_id(self) -> str:
        return self.correlation_id


class TriggerFailed(AppError):
    """Raised to the host for a retry: text is the stable code only, never the original message."""

    status, code, title = 500, "trigger_failed", "The trigger failed and will be retried"


PermanentHandler = Callable[[TriggerContext, PermanentMessageError], None]


def trigger_context(
    context: Any, kind: str, *, message_id: str | None = None, delivery_count: int | None = None
) -> TriggerContext:
    if kind not in TRIGGER_KINDS:
        raise ValueError("unknown trigger kind")
    return TriggerContext(
        correlation_id=correlation_id_from(context),
        function_name=str(getattr(context, "function_name", "") or "trigger"),
        invocation_id=str(getattr(context, "invocation_id", "") or ""),
        trace_parent=getattr(getattr(context, "trace_context", None), "trace_parent", None),
        trigger=kind,
        message_id=message_id,
        delivery_count=delivery_count,
    )


def run_trigger[T](
    context: Any,
    kind: str,
    work: Callable[[TriggerContext], T],
    *,
    entity_type: str | None = None,
    message_id: str | None = None,
    delivery_count: int | None = None,
    on_permanent: PermanentHandler | None = None,
) -> T | None:
    """Run `work` under the trigger pipeline; returns its result, or None when `on_permanent` handled it."""
    ctx = trigger_context(context, kind, message_id=message_id, delivery_count=delivery_count)
    attributes: dict[str, str | int | float | bool] = {}
    if delivery_count is not None:
        attributes["messaging.message.delivery_count"] = int(delivery_count)
    with invocation_span(ctx, ctx.function_name, kind, attributes) as span:
        try:
            return work(ctx)
        except PermanentMessageError as exc:
            permanent = exc
        except AppError as exc:
            logger.warning(
                "%s failed (%s), message %s will be retried",
                safe(ctx.function_name),
                safe(safe_reason(exc.code)),
                message_id,
            )
            span.set_attribute("error.type", type(exc).__name__)
            raise exc from None  # its text is its code; `from None` drops a chained payload-bearing error
        except Exception as exc:  # noqa: BLE001 - replaced by a PHI-free error
            logger.error(
                "Unhandled %s in %s, message %s will be retried",
                exception_type_name(exc),
                safe(ctx.function_name),
                message_id,
            )
            span.set_attribute("error.type", type(exc).__name__)
            raise TriggerFailed() from None
        _record_permanent(ctx, permanent, entity_type)
        if on_permanent is None:
            raise PermanentMessageError(permanent.code, errors=permanent.errors) from None
        on_permanent(ctx, permanent)
        return None


def _record_permanent(ctx: TriggerContext, error: PermanentMessageError, entity_type: str | None) -> None:
    code = safe_reason(error.code)
    logger.warning(
        "%s rejected message %s permanently: %s", safe(ctx.function_name), ctx.message_id, safe(code)
    )
    # Audited without an entity id: the message could not be tied to a record (or is not trusted to be).
    audit_trail().record_access(
        AuditAction.EXECUTE,
        entity_type or "message",
        None,
        None,
        ctx,
        AuditOutcome.FAILURE,
        event_type=AuditEventType.APPLICATION_ACTIVITY,
        trigger=ctx.trigger,
        outcome_reason=code,
    )
