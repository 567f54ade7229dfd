"""Document metadata: the stored record (table `documents`) and its read models.

The bytes live in Blob storage under a random UUID name; only this metadata is in SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel

from shared.schemas import classification as c
from shared.schemas.classification import CLINICIAN, INTAKE, Group, IdentifierKind
from shared.schemas.types import STORED, ContentType, Sha256Hex, SizeBytes

DocumentStatus = Literal["received", "processed"]


class F:
    id = c.identifier(
        IdentifierKind.OTHER_UNIQUE_ID, Group.DOCUMENT, CLINICIAN, INTAKE, note="random UUID record id"
    )
    patient_id = c.identifier(IdentifierKind.OTHER_UNIQUE_ID, Group.RECORD, CLINICIAN, INTAKE)
    content_type = c.not_phi(Group.DOCUMENT, CLINICIAN, INTAKE)
    size_bytes = c.not_phi(Group.DOCUMENT, CLINICIAN, INTAKE)
    sha256 = c.phi(Group.DOCUMENT, CLINICIAN, note="integrity hash of clinical content")
    blob_name = c.identifier(
        IdentifierKind.OTHER_UNIQUE_ID, Group.DOCUMENT, note="random UUID; locates PHI, shown to no role"
    )
    status = c.not_phi(Group.DOCUMENT, CLINICIAN, INTAKE)
    created_at = c.identifier(IdentifierKind.DATES, Group.DOCUMENT, CLINICIAN, INTAKE)


class DocumentRecord(BaseModel):
    model_config = STORED

    id: Annotated[str, F.id]
    patient_id: Annotated[str, F.patient_id]
    content_type: Annotated[ContentType, F.content_type]
    size_bytes: Annotated[SizeBytes, F.size_bytes]
    sha256: Annotated[Sha256Hex, F.sha256]
    blob_name: Annotated[str, F.blob_name]
    status: Annotated[DocumentStatus, F.status]
    created_at: Annotated[datetime, F.created_at]
