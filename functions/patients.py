"""Patients: `POST /api/patients` (create) and `GET /api/patients/{id}` (the caller's role view).

Thin handlers: parse -> (authorized by `phi_route`) -> repository -> audit -> respond. Every PHI
access is audited with the patient's pseudonym; if the audit cannot be written the pipeline answers
503 and no PHI is returned.
"""

from __future__ import annotations

import uuid

import azure.functions as func

from shared.audit import AuditAction, audit_trail
from shared.config import get_settings
from shared.data import get_repositories, get_safe_harbor
from shared.errors import NotFound
from shared.http_route import RequestContext, phi_route
from shared.principal import Principal
from shared.problem import json_response
from shared.roles import PATIENT_CREATE, PATIENT_READ, view_for
from shared.schemas.classification import RESEARCHER
from shared.schemas.patients import PatientCreate, PatientRecord
from shared.schemas.validation import parse_body
from shared.schemas.views import render

bp = func.Blueprint()


def patient_id_from(req: func.HttpRequest) -> str:
    """The route id, canonicalised; anything that is not a UUID cannot exist, so it is a plain 404."""
    try:
        return str(uuid.UUID(req.route_params.get("id", "")))
    except ValueError:
        raise NotFound() from None


@bp.function_name("patients_create")
@bp.route(route="patients", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@phi_route(PATIENT_CREATE)
def create_patient(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
    data = parse_body(PatientCreate, req.get_body(), get_settings().data.max_request_bytes)

    def audit_create(created: PatientRecord) -> None:
        audit_trail().record_access(
            AuditAction.CREATE, "patient", created.id, principal, ctx, forwarded_for=ctx.forwarded_for
        )

    # Audited inside the insert's transaction: when the audit cannot be written, no row is committed.
    record = get_repositories().patients.create(data, before_commit=audit_create)
    return json_response({"id": record.id}, 201, headers={"Location": f"/api/patients/{record.id}"})


@bp.function_name("patients_read")
@bp.route(route="patients/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@phi_route(PATIENT_READ)
def read_patient(req: func.HttpRequest, principal: Principal, ctx: RequestContext) -> func.HttpResponse:
    view = view_for(principal)  # before the lookup: a caller with no view learns nothing
    record = get_repositories().patients.get(patient_id_from(req))
    body = render(record, view, get_safe_harbor() if view == RESEARCHER else None)
    audit_trail().record_access(
        AuditAction.READ, "patient", record.id, principal, ctx, forwarded_for=ctx.forwarded_for
    )
    return json_response(body)
