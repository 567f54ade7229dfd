"""Bounded formats shared by the inbound and stored models. Patterns are anchored and lengths capped."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

# Inbound bodies: unknown fields rejected, no type coercion (the JSON must already have the right types).
INBOUND = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False, frozen=True)
# Stored records: read back from the database, so ISO strings become dates; still no unknown fields.
STORED = ConfigDict(extra="forbid", frozen=True)

Mrn = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{6,20}$")]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]  # E.164
Email = Annotated[
    str,
    StringConstraints(
        max_length=254, pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$"
    ),
]
AddressLine = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
City = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
UsState = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Zip = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}(-[0-9]{4})?$")]
Sex = Literal["female", "male", "other", "unknown"]
Payer = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
MemberId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,30}$")]
# SNOMED/RxNorm-like numeric codes for allergies, ICD-10-CM-like codes for problems.
AllergyCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,18}$")]
ProblemCode = Annotated[str, StringConstraints(pattern=r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")]
AllergyList = Annotated[list[AllergyCode], Field(max_length=50)]
ProblemList = Annotated[list[ProblemCode], Field(max_length=100)]
FreeText = Annotated[str, StringConstraints(max_length=4000)]
LabOrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$")]
LoincCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$")]
# UCUM-like: units, annotations, powers and operators, no spaces.
UcumUnit = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9%.\[\]{}/*^'-]{1,30}$")]
LabValue = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.<>=+ -]+$")]
Version = Annotated[int, Field(ge=1, le=1_000_000)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ContentType = Literal["application/pdf", "image/png", "image/jpeg", "text/plain"]
SizeBytes = Annotated[int, Field(ge=1, le=1024 * 1024 * 1024)]
Year = Annotated[int, Field(ge=1800, le=9999)]


def _not_future(value: date) -> date:
    if value > date.today():
        raise ValueError("date is in the future")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    return value


PastDate = Annotated[date, Field(ge=date(1880, 1, 1)), AfterValidator(_not_future)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
