"""Lab results from an external lab system (Service Bus `lab-results`): inbound message and stored row.

A lab sends a result per order; a corrected result comes as a higher `version` of the same order.
Storing is an idempotent upsert on (lab_order_id, version): see `shared.repositories.lab_results`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel

from shared.schemas import classification as c
from shared.schemas.classification import CLINICIAN, RESEARCHER, Deid, Group, IdentifierKind
from shared.schemas.types import (
    INBOUND,
    STORED,
    AwareDatetime,
    LabOrderId,
    LabValue,
    LoincCode,
    Mrn,
    UcumUnit,
    Version,
)

K = IdentifierKind


class F:
    lab_order_id = c.identifier(K.ACCOUNT_NUMBER, Group.CLINICAL, CLINICIAN, note="the lab's order number")
    version = c.not_phi(Group.CLINICAL, CLINICIAN, RESEARCHER)
    patient_mrn = c.identifier(
        K.MEDICAL_RECORD_NUMBER, Group.RECORD, note="resolved to patient_id, not stored"
    )
    patient_id = c.identifier(
        K.OTHER_UNIQUE_ID,
        Group.RECORD,
        CLINICIAN,
        RESEARCHER,
        deid=Deid.PSEUDONYM,
        token_kind="patient",  # noqa: S106
    )
    code = c.phi(Group.CLINICAL, CLINICIAN, RESEARCHER, note="LOINC-like")
    value = c.phi(Group.CLINICAL, CLINICIAN, RESEARCHER)
    unit = c.phi(Group.CLINICAL, CLINICIAN, RESEARCHER, note="UCUM-like")
    effective_at = c.identifier(K.DATES, Group.CLINICAL, CLINICIAN, RESEARCHER, deid=Deid.YEAR)
    received_at = c.identifier(K.DATES, Group.RECORD, CLINICIAN)


class LabResultIn(BaseModel):
    """The message body a lab sends."""

    model_config = INBOUND

    lab_order_id: Annotated[LabOrderId, F.lab_order_id]
    version: Annotated[Version, F.version]
    patient_mrn: Annotated[Mrn, F.patient_mrn]
    code: Annotated[LoincCode, F.code]
    value: Annotated[LabValue, F.value]
    unit: Annotated[UcumUnit, F.unit]
    effective_at: Annotated[AwareDatetime, F.effective_at]


class LabResultRecord(BaseModel):
    """The stored lab result (table `lab_results`): one row per order, at its highest version."""

    model_config = STORED

    lab_order_id: Annotated[str, F.lab_order_id]
    version: Annotated[int, F.version]
    patient_id: Annotated[str, F.patient_id]
    code: Annotated[str, F.code]
    value: Annotated[str, F.value]
    unit: Annotated[str, F.unit]
    effective_at: Annotated[datetime, F.effective_at]
    received_at: Annotated[datetime, F.received_at]
