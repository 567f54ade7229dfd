"""Service Bus trigger `lab-results`: validate a lab result, upsert it idempotently, audit it.

Message body (JSON): lab_order_id, version, patient_mrn, code, value, unit, effective_at
(`shared.schemas.lab_results.LabResultIn`, strict, extra fields forbidden).

- Upsert on (lab_order_id, version): a redelivery, or an older version arriving late, changes nothing;
  a higher version replaces the row (audited as an update). Audit is at-least-once: a redelivery
  (delivery count > 1) of the stored version is audited again, because the earlier delivery may have
  written the row and then failed on the audit sink.
- The MRN is resolved to the patient id and not stored.
- Settlement (docs/workload.md, "Service Bus settlement"): SDK-type binding with
  `auto_complete_messages=False`; `shared.settlement.run_settled_trigger` completes a processed
  message, dead-letters an invalid one (`PermanentMessageError`: schema failure, unknown patient) on
  its first delivery with the PHI-free reason code, and raises on a transient failure (SQL, Key Vault,
  audit sink down) so the host abandons it and `maxDeliveryCount` bounds the retries.
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

from shared.audit import AuditAction, AuditEventType, audit_trail
from shared.config import get_settings
from shared.data import get_repositories
from shared.errors import AppError, PermanentMessageError
from shared.repositories.lab_results import Upsert
from shared.schemas.lab_results import LabResultIn
from shared.schemas.validation import parse_body
from shared.settlement import run_settled_trigger
from shared.trigger_route import TriggerContext

bp = func.Blueprint()

QUEUE = "lab-results"  # the binding needs a literal; must equal SERVICE_BUS_LAB_RESULTS_QUEUE's default


def parse_message(body: bytes) -> LabResultIn:
    try:
        return parse_body(LabResultIn, body, get_settings().data.max_request_bytes)
    except AppError as exc:
        # Field paths and error codes only (never values), from the same parser as the HTTP bodies.
        raise PermanentMessageError("invalid_lab_result", errors=exc.errors) from None


def process(body: bytes, ctx: TriggerContext) -> Upsert:
    result = parse_message(body)
    repos = get_repositories()
    patient = repos.patients.find_by_mrn(result.patient_mrn)
    if patient is None:
        raise PermanentMessageError("unknown_patient")
    outcome = repos.lab_results.upsert(
        lab_order_id=result.lab_order_id,
        version=result.version,
        patient_id=patient.id,
        code=result.code,
        value=result.value,
        unit=result.unit,
        effective_at=result.effective_at,
    )
    if outcome is Upsert.UNCHANGED and _may_be_unaudited(result, ctx):
        outcome = Upsert.UPDATED
    if outcome is not Upsert.UNCHANGED:
        audit_trail().record_access(
            AuditAction.CREATE if outcome is Upsert.INSERTED else AuditAction.UPDATE,
            "lab_result",
            result.lab_order_id,
            None,
            ctx,
            event_type=AuditEventType.APPLICATION_ACTIVITY,
            trigger="servicebus",
        )
    return outcome


def _may_be_unaudited(result: LabResultIn, ctx: TriggerContext) -> bool:
    """A redelivery of the version that is stored: an earlier delivery may have written it and then
    failed to audit (and raised). Audit is at-least-once: record it again rather than risk none.

    The AMQP header's delivery-count counts *prior* attempts (Service Bus writes DeliveryCount - 1 on
    the wire; the .NET and Java SDKs add the 1 back, the Python SDK does not), so 0 is a first
    delivery. Any other value may be a redelivery; if a host ever reports 1-based counts, the cost is
    one extra audit record for a duplicate send, never a missing one."""
    if not ctx.delivery_count:
        return False
    stored = get_repositories().lab_results.get(result.lab_order_id)
    return stored is not None and stored.version == result.version


@bp.function_name("lab_results")
@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=QUEUE, connection="ServiceBusConnection", auto_complete_messages=False
)
def lab_results(
    msg: servicebus.ServiceBusReceivedMessage,
    message_actions: servicebus.ServiceBusMessageActions,
    context: func.Context,
) -> None:
    run_settled_trigger(context, msg, message_actions, process, entity_type="lab_result")
