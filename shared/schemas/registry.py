"""Every stored or transmitted model, and where each is kept (for the data inventory and the tests)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from shared.schemas.documents import DocumentRecord
from shared.schemas.events import DocumentReceived
from shared.schemas.lab_results import LabResultIn, LabResultRecord
from shared.schemas.patients import PatientCreate, PatientRecord, PatientUpdate


@dataclass(frozen=True)
class ModelEntry:
    model: type[BaseModel]
    kind: str  # "stored", "inbound", "outbound"
    location: str
    retention: str


_RETENTION = "PHI_RETENTION_DAYS (default 2555 days), then deleted by retention-sweep unless on legal hold"

MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(PatientRecord, "stored", "Azure SQL table `patients`", _RETENTION),
    ModelEntry(
        DocumentRecord,
        "stored",
        "Azure SQL table `documents`; bytes in Blob container PHI_CONTAINER",
        _RETENTION,
    ),
    ModelEntry(LabResultRecord, "stored", "Azure SQL table `lab_results`", _RETENTION),
    ModelEntry(
        PatientCreate, "inbound", "HTTP body of POST /api/patients (not kept as such)", "request lifetime"
    ),
    ModelEntry(
        PatientUpdate, "inbound", "HTTP body of a patient update (not kept as such)", "request lifetime"
    ),
    ModelEntry(
        LabResultIn,
        "inbound",
        "Service Bus queue SERVICE_BUS_LAB_RESULTS_QUEUE",
        "until consumed or dead-lettered",
    ),
    ModelEntry(
        DocumentReceived,
        "outbound",
        "Service Bus queue SERVICE_BUS_EVENTS_QUEUE (de-identified)",
        "queue message TTL (set by infra)",
    ),
)
