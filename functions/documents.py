"""Clinical documents: upload (`POST /api/patients/{id}/documents`) and download (`GET .../{docId}`).

Upload: the body streams to a random-named blob in the PHI container (size-limited, type checked by
its leading bytes), its metadata is recorded, the access audited, and only then is
`{"documentId": ...}` enqueued for `document-intake`. A failure at any step undoes the earlier ones,
so a 4xx/5xx never leaves a blob, a row or a queue message behind. Answers 202: intake is async.

Download: the document must belong to the patient in the path (another patient's document is a
plain 404), its hash is checked against the record before a byte is returned, and the read audited.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import azure.functions as func

from functions.patients import patient_id_from
from shared.audit import AuditAction, AuditEventType, AuditOutcome, audit_trail
from shared.blobs import IntegrityError, StoredBlob
from shared.config import get_settings
from shared.data import get_document_store, get_repositories
from shared.errors import NotFound
from shared.http_route import RequestContext, phi_route
from shared.principal import Principal
from shared.problem import json_response
from shared.queues import send_json
from shared.roles import DOCUMENT_DOWNLOAD, DOCUMENT_UPLOAD
from shared.schemas.documents import DocumentRecord
from shared.scrub import exception_type_name

bp = func.Blueprint()
logger = logging.getLogger(__name__)


def document_id_from(req: func.HttpRequest) -> str:
    try:
        return str(uuid.UUID(req.route_params.get("docId", "")))
    except ValueError:
        raise NotFound() from None


def _undo(record: DocumentRecord | None, stored: StoredBlob) -> None:
    """Best effort: remove what a failed upload wrote. The original failure is what the caller sees."""
    try:
        if record is not None:
            get_repositories().documents.delete(record.id)
        get_document_store().delete(stored.blob_name)
    except Exception as exc:  # noqa: BLE001 - must not mask the original error
        logger.error("Upload clean-up failed: %s", exception_type_name(exc))


@bp.function_name("documents_upload")
@bp.route(route="patients/{id}/documents", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@phi_route(DOCUMENT_UPLOAD)
def upload_document(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
    repos = get_repositories()
    patient = repos.patients.get(patient_id_from(req))  # 404 before anything is stored
    stored = get_document_store().upload(req.get_body(), req.headers.get("Content-Type"))
    record: DocumentRecord | None = None
    try:
        record = repos.documents.add(
            DocumentRecord(
                id=str(uuid.uuid4()),
                patient_id=patient.id,
                content_type=stored.content_type,
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                blob_name=stored.blob_name,
                status="received",
                created_at=datetime.now(UTC),
            )
        )
        audit_trail().record_access(
            AuditAction.CREATE, "document", record.id, principal, ctx, forwarded_for=ctx.forwarded_for
        )
        send_json(get_settings().storage.document_intake_queue, {"documentId": record.id})
    except BaseException:
        _undo(record, stored)
        raise
    return json_response(
        {"documentId": record.id, "status": record.status},
        202,
        headers={"Location": f"/api/patients/{patient.id}/documents/{record.id}"},
    )


@bp.function_name("documents_download")
@bp.route(route="patients/{id}/documents/{docId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@phi_route(DOCUMENT_DOWNLOAD)
def download_document(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
    record = get_repositories().documents.get(patient_id_from(req), document_id_from(req))
    try:
        content = get_document_store().read_verified(record.blob_name, record.sha256)
    except IntegrityError as error:
        # A stored document that no longer matches its hash is a security event, not just an error.
        audit_trail().record_access(
            AuditAction.READ,
            "document",
            record.id,
            principal,
            ctx,
            AuditOutcome.FAILURE,
            event_type=AuditEventType.SECURITY_ALERT,
            forwarded_for=ctx.forwarded_for,
            outcome_reason=error.code,
        )
        raise
    audit_trail().record_access(
        AuditAction.READ, "document", record.id, principal, ctx, forwarded_for=ctx.forwarded_for
    )
    return func.HttpResponse(
        content,
        status_code=200,
        mimetype=record.content_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # The record id as file name: the original name could be PHI and is never stored.
            "Content-Disposition": f'attachment; filename="{record.id}"',
        },
    )
