"""The clinical scenario end to end, through the registered functions, on real Azurite and embedded SQLite.

create patient -> upload document -> the REAL message taken from the Azurite queue -> queue trigger ->
DocumentReceived published (captured at the Service Bus SDK's transport boundary: no broker can run
here) -> lab result via the Service Bus trigger -> role-projected reads -> retention sweep -> the audit
trail holds exactly one record per PHI access.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from azure.storage.blob import BlobServiceClient

from shared.audit import AuditAction, AuditEvent, AuditOutcome, audit_trail
from shared.config import get_settings
from shared.data import get_database, get_repositories
from shared.roles import Role
from tests.fixtures.data import patient_create_body
from tests.fixtures.workload import (
    PDF,
    Clinical,
    SentEvents,
    lab_message,
    lab_result_body,
    take_intake_message,
)
from tests.functions.test_patients import EXPECTED_VIEWS

RESEARCHER_VIEW = {
    "patient_token", "birth_year", "age", "sex", "state", "zip3", "admission_year", "discharge_year",
    "allergies", "problems",
}  # fmt: skip


def _age(table: str, column: str, where: str, value: str) -> None:
    old = "2001-01-01T00:00:00.000000Z"

    def work(cursor: object) -> None:
        cursor.execute(f"UPDATE {table} SET {column} = ? WHERE {where} = ?", (old, value))  # type: ignore[attr-defined]  # noqa: S608

    get_database().run(work)


def test_clinical_flow_end_to_end(
    clinical: Clinical, sent_events: SentEvents, audit_events: list[AuditEvent]
) -> None:
    body = patient_create_body()
    driver = clinical.driver
    # 1. create (intake) and upload a document
    created = driver.http(
        "POST", "patients", body=json.dumps(body).encode(), headers=clinical.as_role(Role.INTAKE)
    )
    assert created.status_code == 201
    patient_id = json.loads(created.get_body())["id"]
    uploaded = clinical.upload(patient_id)
    assert uploaded.status_code == 202
    document_id = json.loads(uploaded.get_body())["documentId"]

    # 2. the real queue message, as the host would hand it over
    message = take_intake_message()
    assert json.loads(message.get_body()) == {"documentId": document_id}
    driver.queue("document_intake", message)
    assert get_repositories().documents.find(document_id).status == "processed"  # type: ignore[union-attr]

    # 3. the de-identified event, exactly as the SDK would put it on the wire
    assert sent_events.queues == [get_settings().service_bus.events_queue]
    (event,) = sent_events.bodies()
    assert set(event) == {"event_id", "type", "document_id", "patient_token", "content_type", "size_bytes",
                          "received_year"}  # fmt: skip
    assert event["document_id"] == document_id and event["size_bytes"] == len(PDF)
    assert event["patient_token"].startswith("v") and patient_id not in json.dumps(event)
    for value in (body["mrn"], body["given_name"], body["family_name"], body["birth_date"]):
        assert value not in json.dumps(event)
    assert sent_events.messages[0].message_id == event["event_id"]

    # 4. a lab result from the lab system
    lab = lab_result_body(body["mrn"])
    lab_delivery = lab_message(lab)
    driver.service_bus("lab_results", lab_delivery)
    stored_lab = get_repositories().lab_results.get(lab["lab_order_id"])
    assert stored_lab is not None and stored_lab.patient_id == patient_id and stored_lab.value == "98"
    # settled by the function itself (auto_complete_messages=False): completed once, over the host's gRPC
    assert [(c.method, c.lock_token) for c in clinical.settlement.calls] == [
        ("Complete", str(lab_delivery.lock_token))
    ]

    # 5. each role reads its own view
    for role, expected in [*EXPECTED_VIEWS.items(), (Role.RESEARCHER, RESEARCHER_VIEW)]:
        read = driver.http("GET", f"patients/{patient_id}", headers=clinical.as_role(role))
        assert read.status_code == 200, role
        assert set(json.loads(read.get_body())) == expected, role
        if role is Role.RESEARCHER:
            research_token = json.loads(read.get_body())["patient_token"]
    download = driver.http(
        "GET", f"patients/{patient_id}/documents/{document_id}", headers=clinical.as_role(Role.CLINICIAN)
    )
    assert download.status_code == 200 and download.get_body() == PDF

    # 6. retention: a second patient on legal hold survives; the aged one goes, blob and all
    held_id = clinical.create_patient()
    get_repositories().patients.set_legal_hold(held_id, True)
    for pid in (patient_id, held_id):
        _age("patients", "updated_at", "id", pid)
    driver.timer("retention_sweep")
    gone = driver.http("GET", f"patients/{patient_id}", headers=clinical.as_role(Role.CLINICIAN))
    assert gone.status_code == 404
    assert (
        driver.http("GET", f"patients/{held_id}", headers=clinical.as_role(Role.CLINICIAN)).status_code == 200
    )
    assert get_repositories().documents.find(document_id) is None
    assert get_repositories().lab_results.get(lab["lab_order_id"]) is None
    container = BlobServiceClient.from_connection_string(
        clinical.azurite.connection_string
    ).get_container_client(get_settings().storage.phi_container)
    assert list(container.list_blobs()) == []
    driver.timer("retention_sweep")  # idempotent: nothing more to do, counts are zero

    # 7. one audit record per PHI access, entity ids only as pseudonyms
    pseudonym = audit_trail().pseudonymizer.pseudonym  # type: ignore[union-attr]
    patient, document = pseudonym("patient", patient_id), pseudonym("document", document_id)
    lab_result = pseudonym("lab_result", lab["lab_order_id"])
    held = pseudonym("patient", held_id)
    # De-identified outputs share one namespace (the event joins the researcher view) and cannot be
    # joined to the audit trail's pseudonym of the same patient.
    assert event["patient_token"] == research_token
    assert research_token != patient
    trail = [
        (e.action, e.entity.type if e.entity else None, e.entity.pseudonym if e.entity else None,
         e.entity.count if e.entity else None, e.outcome)
        for e in audit_events
    ]  # fmt: skip
    ok = AuditOutcome.SUCCESS
    assert trail == [
        (AuditAction.CREATE, "patient", patient, None, ok),
        (AuditAction.CREATE, "document", document, None, ok),
        (AuditAction.UPDATE, "document", document, None, ok),  # intake validated it
        (AuditAction.CREATE, "lab_result", lab_result, None, ok),
        *[(AuditAction.READ, "patient", patient, None, ok)] * 4,
        (AuditAction.READ, "document", document, None, ok),
        (AuditAction.CREATE, "patient", held, None, ok),
        (AuditAction.DELETE, "patient", None, 1, ok),
        (AuditAction.DELETE, "document", None, 1, ok),
        (AuditAction.DELETE, "lab_result", None, 1, ok),
        (AuditAction.READ, "patient", held, None, ok),  # the 404 read of the purged patient is no access
        (AuditAction.DELETE, "patient", None, 0, ok),
        (AuditAction.DELETE, "document", None, 0, ok),
        (AuditAction.DELETE, "lab_result", None, 0, ok),
    ]
    records = json.dumps([e.to_record() for e in audit_events], default=str)
    for value in (patient_id, document_id, held_id, lab["lab_order_id"], body["mrn"], body["given_name"]):
        assert value not in records
    assert event["received_year"] == datetime.now(UTC).year
