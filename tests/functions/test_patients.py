"""`POST /api/patients` and `GET /api/patients/{id}` through the registered functions (Azurite, SQLite)."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.audit import AuditAction, AuditEvent, AuditOutcome
from shared.roles import Role
from tests.fixtures.data import patient_create_body
from tests.fixtures.workload import Clinical


def test_create_returns_201_with_the_id_and_audits_a_create(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    body = patient_create_body()
    response = clinical.driver.http(
        "POST", "patients", body=json.dumps(body).encode(), headers=clinical.as_role(Role.CLINICIAN)
    )
    assert response.status_code == 201
    patient_id = json.loads(response.get_body())["id"]
    assert str(uuid.UUID(patient_id)) == patient_id
    assert set(json.loads(response.get_body())) == {"id"}
    assert response.headers["Location"] == f"/api/patients/{patient_id}"
    creates = [e for e in audit_events if e.action is AuditAction.CREATE]
    assert len(creates) == 1 and creates[0].entity is not None
    assert creates[0].entity.type == "patient" and creates[0].entity.pseudonym is not None
    assert patient_id not in repr(creates[0]) and body["mrn"] not in repr(creates[0])


@pytest.mark.parametrize("role", [Role.BILLING, Role.RESEARCHER])
def test_roles_that_may_not_create_get_403(clinical: Clinical, role: Role) -> None:
    response = clinical.driver.http(
        "POST", "patients", body=json.dumps(patient_create_body()).encode(), headers=clinical.as_role(role)
    )
    assert response.status_code == 403


def test_invalid_body_is_400_with_paths_and_codes_only(clinical: Clinical) -> None:
    body = patient_create_body(birth_date="not-a-date", surprise_SSN_123456789="x")
    response = clinical.driver.http(
        "POST", "patients", body=json.dumps(body).encode(), headers=clinical.as_role(Role.INTAKE)
    )
    assert response.status_code == 400
    text = response.get_body().decode()
    assert "not-a-date" not in text and "123456789" not in text and body["mrn"] not in text
    assert {"path": "birth_date", "code": "date_from_datetime_parsing"} in json.loads(text)["errors"] or any(
        e["path"] == "birth_date" for e in json.loads(text)["errors"]
    )


def test_duplicate_mrn_is_409(clinical: Clinical) -> None:
    clinical.create_patient(mrn="MRN000777123")
    response = clinical.driver.http(
        "POST",
        "patients",
        body=json.dumps(patient_create_body(mrn="MRN000777123")).encode(),
        headers=clinical.as_role(Role.INTAKE),
    )
    assert response.status_code == 409
    assert b"MRN000777123" not in response.get_body()


EXPECTED_VIEWS = {
    Role.CLINICIAN: {
        "id", "mrn", "given_name", "family_name", "birth_date", "sex", "phone", "email", "address_line",
        "city", "state", "postal_code", "insurance_payer", "insurance_member_id", "admission_date",
        "discharge_date", "allergies", "problems", "note", "created_at", "updated_at",
    },
    Role.INTAKE: {
        "id", "mrn", "given_name", "family_name", "birth_date", "sex", "phone", "email", "address_line",
        "city", "state", "postal_code",
    },
    Role.BILLING: {
        "id", "given_name", "family_name", "insurance_payer", "insurance_member_id", "admission_date",
        "discharge_date",
    },
}  # fmt: skip


@pytest.mark.parametrize("role", list(EXPECTED_VIEWS))
def test_read_returns_exactly_the_roles_view(clinical: Clinical, role: Role) -> None:
    patient_id = clinical.create_patient()
    response = clinical.driver.http("GET", f"patients/{patient_id}", headers=clinical.as_role(role))
    assert response.status_code == 200
    assert set(json.loads(response.get_body())) == EXPECTED_VIEWS[role]


def test_researcher_view_is_deidentified(clinical: Clinical) -> None:
    body = patient_create_body()
    patient_id = clinical.create_patient(**{k: body[k] for k in ("mrn",)})
    response = clinical.driver.http(
        "GET", f"patients/{patient_id}", headers=clinical.as_role(Role.RESEARCHER)
    )
    assert response.status_code == 200
    text = response.get_body().decode()
    for value in (patient_id, body["mrn"], body["given_name"], body["family_name"], body["birth_date"]):
        assert value not in text
    view = json.loads(text)
    assert "mrn" not in view and "given_name" not in view


def test_unknown_id_is_404_and_not_audited_as_a_read(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    response = clinical.driver.http(
        "GET", f"patients/{uuid.uuid4()}", headers=clinical.as_role(Role.CLINICIAN)
    )
    assert response.status_code == 404
    assert not [e for e in audit_events if e.action is AuditAction.READ and e.outcome is AuditOutcome.SUCCESS]


def test_non_uuid_id_is_404(clinical: Clinical) -> None:
    response = clinical.driver.http("GET", "patients/MRN12345", headers=clinical.as_role(Role.CLINICIAN))
    assert response.status_code == 404


def test_caller_without_read_permission_gets_403_before_any_lookup(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.patients as module

    def no_lookup() -> object:
        raise AssertionError("the repository must not be touched for a denied caller")

    monkeypatch.setattr(module, "get_repositories", no_lookup)
    known = f"patients/{uuid.uuid4()}"
    app_only = clinical.driver.http("GET", known, headers=clinical.oidc.bearer(clinical.oidc.app_token()))
    no_role = clinical.driver.http("GET", known, headers=clinical.oidc.bearer(roles=[]))
    assert app_only.status_code == 403 and no_role.status_code == 403
    assert app_only.get_body().replace(
        app_only.headers["X-Correlation-Id"].encode(), b""
    ) == no_role.get_body().replace(no_role.headers["X-Correlation-Id"].encode(), b"")


def test_audit_failure_returns_503_and_no_phi(clinical: Clinical, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.audit import audit_trail

    patient_id = clinical.create_patient(given_name="Quillon")

    class BrokenSink:
        def write(self, event: AuditEvent) -> None:
            raise OSError("archive down")

    monkeypatch.setattr(audit_trail(), "sinks", (BrokenSink(),))
    response = clinical.driver.http("GET", f"patients/{patient_id}", headers=clinical.as_role(Role.CLINICIAN))
    assert response.status_code == 503
    assert b"Quillon" not in response.get_body()
    assert json.loads(response.get_body())["code"] == "dependency_unavailable"


def test_an_app_role_value_with_entra_punctuation_is_audited_not_a_500(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    """Entra app role values may hold punctuation such as `&` or `+` (no spaces). A caller holding one
    must get the normal answer (and its audit record), not a 500 from the audit record's format check;
    for a denial that 500 also meant the denied attempt went unaudited."""
    patient_id = clinical.create_patient()
    audit_events.clear()
    extra = "Records&Billing+EU"
    allowed = clinical.driver.http(
        "GET", f"patients/{patient_id}", headers=clinical.oidc.bearer(roles=[str(Role.CLINICIAN), extra])
    )
    denied = clinical.driver.http(
        "GET", f"patients/{patient_id}", headers=clinical.oidc.bearer(roles=[extra])
    )

    assert (allowed.status_code, denied.status_code) == (200, 403)
    outcomes = [(e.outcome.value, e.actor.roles if e.actor else ()) for e in audit_events]
    assert outcomes == [
        ("success", tuple(sorted([str(Role.CLINICIAN), extra]))),
        ("denied", (extra,)),
    ]
