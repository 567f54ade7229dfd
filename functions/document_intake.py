"""Storage Queue trigger `document-intake`: validate an uploaded document, then announce it, de-identified.

Message: `{"documentId": "<uuid>"}` (ids only), enqueued by the upload route.

1. The stored blob is re-read (streamed): it exists, its SHA-256 matches the record, its bytes match
   its type. 2. A `DocumentReceived` event (pseudonymous patient token, no identifiers) is published
   to Service Bus. 3. The update is audited. 4. The record is marked processed.

Idempotent on documentId: a processed document is skipped (nothing published, written or audited
again). The event id is derived from the document id, so a crash between publishing and marking
re-sends the *same* message_id and the broker's duplicate detection drops it.

A message that can never succeed (malformed, unknown id, missing blob, hash or type mismatch) is moved
to `document-intake-poison` by us, with its reason code logged, and the invocation then succeeds, so
the host deletes the original: no pointless retries up to `maxDequeueCount`. Anything transient
(storage, SQL, Key Vault, Service Bus down) is raised and retried by the host; after
`maxDequeueCount` (host.json: 5) the host itself moves it to the same poison queue.
"""

from __future__ import annotations

import json
import uuid

import azure.functions as func

from shared.audit import AuditAction, AuditEventType, audit_trail
from shared.blobs import IntegrityError
from shared.config import get_settings
from shared.data import get_document_store, get_event_publisher, get_pseudonymizer, get_repositories
from shared.errors import NotFound, PermanentMessageError, UnsupportedMediaType
from shared.queues import move_to_poison
from shared.schemas.classification import DEID_PATIENT_KIND
from shared.schemas.events import DocumentReceived
from shared.trigger_route import TriggerContext, run_trigger

bp = func.Blueprint()

QUEUE = "document-intake"  # the binding needs a literal; must equal DOCUMENT_INTAKE_QUEUE's default
# Fixed namespace: the event id is a pure function of the document id (broker duplicate detection).
EVENT_NAMESPACE = uuid.UUID("6f1f4f1e-8a53-4d5e-9d4c-2f0a8f3b7c11")


def parse_message(body: bytes) -> str:
    """The document id, or `PermanentMessageError("malformed_message")`. Nothing else is accepted."""
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict) or set(payload) != {"documentId"}:
            raise ValueError
        return str(uuid.UUID(str(payload["documentId"])))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):  # RecursionError: deeply nested JSON
        raise PermanentMessageError("malformed_message") from None


def process(body: bytes, ctx: TriggerContext) -> bool:
    """Returns True if this delivery did the work, False if it was already done (a redelivery)."""
    document_id = parse_message(body)
    repos = get_repositories()
    record = repos.documents.find(document_id)
    if record is None:
        raise PermanentMessageError("unknown_document")
    if record.status == "processed":
        return False
    try:
        get_document_store().verify(record.blob_name, record.sha256, record.content_type)
    except NotFound:
        raise PermanentMessageError("document_blob_missing") from None
    except IntegrityError:
        raise PermanentMessageError("document_hash_mismatch") from None
    except UnsupportedMediaType:
        raise PermanentMessageError("document_type_not_allowed") from None
    event = DocumentReceived(
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"DocumentReceived:{record.id}")),
        document_id=record.id,
        patient_token=get_pseudonymizer().pseudonym(DEID_PATIENT_KIND, record.patient_id),
        content_type=record.content_type,
        size_bytes=record.size_bytes,
        received_year=record.created_at.year,
    )
    get_event_publisher().publish(event, ctx.trace_id)
    # Audit before marking: if the audit sink is down this raises, the record stays `received`, and the
    # redelivery does it all again (same event id). Marked first, a redelivery would skip the audit.
    audit_trail().record_access(
        AuditAction.UPDATE,
        "document",
        record.id,
        None,
        ctx,
        event_type=AuditEventType.APPLICATION_ACTIVITY,
        trigger="queue",
    )
    repos.documents.mark_processed(record.id)
    return True


@bp.function_name("document_intake")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE, connection="PhiStorage")
def document_intake(msg: func.QueueMessage, context: func.Context) -> None:
    body = msg.get_body()
    run_trigger(
        context,
        "queue",
        lambda ctx: process(body, ctx),
        entity_type="document",
        message_id=msg.id,
        delivery_count=msg.dequeue_count,
        on_permanent=lambda ctx, error: move_to_poison(
            get_settings().storage.document_intake_queue, body, str(msg.id or ""), error.code
        ),
    )
