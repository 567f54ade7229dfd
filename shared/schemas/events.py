"""Outbound events: what leaves the PHI store. De-identified or pseudonymous only.

`OutboundEvent` refuses, when a subclass is defined, any field classified as a Safe Harbor identifier
or as free text, so an event schema cannot be written that would carry PHI identifiers out.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import classification as c
from shared.schemas.classification import Category, ClassificationError, Deid, Group, classified_fields
from shared.schemas.types import ContentType, SizeBytes, Year

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_TOKEN = r"^v[A-Za-z0-9]{1,64}:[0-9a-f]{64}$"  # noqa: S105 - a regex, not a secret


class OutboundEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    event_type: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, cl in classified_fields(cls):
            if cl.category is Category.IDENTIFIER or cl.deid is Deid.DROP_FREE_TEXT:
                raise ClassificationError(
                    f"{cls.__name__}.{name}: events may not carry identifiers or free text"
                )


class F:
    event_id = c.not_phi(Group.RECORD, note="random UUID; the Service Bus message_id")
    event_type = c.not_phi(Group.RECORD)
    document_id = c.reidentification_code(
        Group.DOCUMENT, note="random UUID, not derived from PHI (164.514(c))"
    )
    patient_token = c.reidentification_code(Group.RECORD, note="HMAC-SHA256 keyed pseudonym (164.514(c))")
    content_type = c.not_phi(Group.DOCUMENT)
    size_bytes = c.not_phi(Group.DOCUMENT)
    received_year = c.not_phi(Group.DOCUMENT, note="year only (Safe Harbor)")


class DocumentReceived(OutboundEvent):
    event_type: ClassVar[str] = "DocumentReceived"

    event_id: Annotated[str, Field(pattern=_UUID), F.event_id]
    type: Annotated[Literal["DocumentReceived"], F.event_type] = "DocumentReceived"
    document_id: Annotated[str, Field(pattern=_UUID), F.document_id]
    patient_token: Annotated[str, Field(pattern=_TOKEN), F.patient_token]
    content_type: Annotated[ContentType, F.content_type]
    size_bytes: Annotated[SizeBytes, F.size_bytes]
    received_year: Annotated[Year, F.received_year]
