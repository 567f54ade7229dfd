"""Document upload and download through the registered functions, on a real Azurite."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from shared.audit import AuditAction, AuditEvent
from shared.config import get_settings
from shared.roles import Role
from shared.storage import get_storage_clients
from tests.fixtures.workload import PDF, Clinical


def _blobs(clinical: Clinical) -> list[str]:
    service = BlobServiceClient.from_connection_string(clinical.azurite.connection_string)
    container = service.get_container_client(get_settings().storage.phi_container)
    return [b.name for b in container.list_blobs()] if container.exists() else []


def _queued(clinical: Clinical) -> list[str]:
    queue = get_storage_clients().queue_client(get_settings().storage.document_intake_queue)
    return [m.content for m in queue.peek_messages(max_messages=32)] if _exists(queue) else []


def _exists(queue: object) -> bool:
    try:
        queue.get_queue_properties()  # type: ignore[attr-defined]
    except Exception:
        return False
    return True


def test_upload_stores_records_enqueues_ids_only_and_returns_202(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    patient_id = clinical.create_patient()
    response = clinical.upload(patient_id)
    assert response.status_code == 202
    document_id = json.loads(response.get_body())["documentId"]
    assert [json.loads(m) for m in _queued(clinical)] == [{"documentId": document_id}]
    assert len(_blobs(clinical)) == 1 and document_id not in _blobs(clinical)[0]
    assert [e.entity.type for e in audit_events if e.action is AuditAction.CREATE and e.entity] == [
        "patient",
        "document",
    ]

    download = clinical.driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )
    assert download.status_code == 200
    assert download.get_body() == PDF
    assert download.mimetype == "application/pdf"
    assert download.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"MZ\x90\x00 not a pdf", "application/pdf", 415),
        (PDF, "application/x-msdownload", 415),
        (b"", "text/plain", 415),
        (b"%PDF-" + b"0" * (64 * 1024), "application/pdf", 413),
    ],
)
def test_rejected_uploads_leave_nothing_behind(
    clinical: Clinical, app_env: object, body: bytes, content_type: str, status: int
) -> None:
    app_env(DOCUMENT_MAX_BYTES="65536")  # type: ignore[operator]
    patient_id = clinical.create_patient()
    response = clinical.upload(patient_id, body=body, content_type=content_type)
    assert response.status_code == status
    assert _blobs(clinical) == [] and _queued(clinical) == []


def test_upload_for_unknown_patient_is_404_and_stores_nothing(clinical: Clinical) -> None:
    response = clinical.upload(str(uuid.uuid4()))
    assert response.status_code == 404
    assert _blobs(clinical) == [] and _queued(clinical) == []


def test_download_of_another_patients_document_is_404(clinical: Clinical) -> None:
    owner, other = clinical.create_patient(), clinical.create_patient()
    document_id = json.loads(clinical.upload(owner).get_body())["documentId"]
    response = clinical.driver.http(
        "GET", f"patients/{other}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.INTAKE, Role.BILLING, Role.RESEARCHER])
def test_only_clinicians_download(clinical: Clinical, role: Role) -> None:
    patient_id = clinical.create_patient()
    document_id = json.loads(clinical.upload(patient_id).get_body())["documentId"]
    response = clinical.driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(role)
    )
    assert response.status_code == 403


def test_enqueue_failure_undoes_the_upload(clinical: Clinical, monkeypatch: pytest.MonkeyPatch) -> None:
    import functions.documents as module
    from shared.errors import DependencyUnavailable

    patient_id = clinical.create_patient()

    def down(queue: str, payload: object) -> str:
        raise DependencyUnavailable("storage")

    monkeypatch.setattr(module, "send_json", down)
    response = clinical.upload(patient_id)
    assert response.status_code == 503
    assert _blobs(clinical) == []
    from shared.data import get_repositories

    assert get_repositories().documents.list_for_patient(patient_id) == []


def test_download_that_cannot_be_audited_is_503_without_the_document(
    clinical: Clinical, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.audit import audit_trail

    patient_id = clinical.create_patient()
    canary = b"%PDF-1.7 canary-Quillon-7f3a"
    document_id = json.loads(clinical.upload(patient_id, body=canary).get_body())["documentId"]

    class BrokenSink:
        def write(self, event: AuditEvent) -> None:
            raise OSError("archive down")

    monkeypatch.setattr(audit_trail(), "sinks", (BrokenSink(),))
    response = clinical.driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )
    assert response.status_code == 503
    assert b"Quillon" not in response.get_body()
    assert json.loads(response.get_body())["code"] == "dependency_unavailable"


def test_a_tampered_document_is_not_returned_and_is_audited_as_a_security_alert(
    clinical: Clinical, audit_events: list[AuditEvent]
) -> None:
    from shared.audit import AuditEventType, AuditOutcome
    from shared.data import get_repositories

    patient_id = clinical.create_patient()
    document_id = json.loads(clinical.upload(patient_id).get_body())["documentId"]
    record = get_repositories().documents.find(document_id)
    assert record is not None
    container = get_storage_clients().blob.get_container_client(get_settings().storage.phi_container)
    container.upload_blob(record.blob_name, b"%PDF-1.7 altered after upload", overwrite=True)
    audit_events.clear()

    response = clinical.driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )

    assert response.status_code == 500
    assert json.loads(response.get_body())["code"] == "integrity_check_failed"
    assert b"altered" not in response.get_body()
    alerts = [e for e in audit_events if e.type is AuditEventType.SECURITY_ALERT]
    assert len(alerts) == 1
    assert alerts[0].outcome is AuditOutcome.FAILURE and alerts[0].outcome_reason == "integrity_check_failed"
    assert not [e for e in audit_events if e.outcome is AuditOutcome.SUCCESS and e.action is AuditAction.READ]
