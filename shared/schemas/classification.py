"""Data classification lives on the models, as pydantic field metadata.

Every field of every stored or transmitted model carries exactly one `Classification`:
- which of the 18 HIPAA Safe Harbor identifier kinds it is (45 CFR 164.514(b)(2)(i)(A)-(R)), or
- PHI that is not an identifier (clinical values), or
- a re-identification code (45 CFR 164.514(c): random or keyed, not derived from identifiers in a
  translatable way; our random record ids in events and the keyed patient pseudonym), or
- not PHI.

The same object names the role views the field may appear in (an explicit allow-list: a field with no
views appears in none) and the de-identification rule used for the researcher view and for events.
Views, de-identification and `docs/data-inventory.md` are all derived from this metadata; there is no
second, hand-kept list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

# The role views of the reference workload (shared/roles.py maps roles to these names).
CLINICIAN, INTAKE, BILLING, RESEARCHER = "clinician", "intake", "billing", "researcher"
VIEW_NAMES: tuple[str, ...] = (CLINICIAN, INTAKE, BILLING, RESEARCHER)


def deid_kind(kind: str) -> str:
    """The pseudonym namespace of de-identified outputs (researcher view, events leaving the PHI store).

    It differs from the audit trail's (`kind` itself), so a research token cannot be joined to the
    audit record of who accessed that patient, and the reverse."""
    return f"deid_{kind}"


DEID_PATIENT_KIND = deid_kind("patient")


class IdentifierKind(StrEnum):
    """The 18 Safe Harbor identifiers, 45 CFR 164.514(b)(2)(i)(A)-(R), in the rule's order."""

    NAMES = "A_names"
    GEOGRAPHIC_SUBDIVISION = "B_geographic_subdivision"
    DATES = "C_dates"
    TELEPHONE = "D_telephone"
    FAX = "E_fax"
    EMAIL = "F_email"
    SSN = "G_ssn"
    MEDICAL_RECORD_NUMBER = "H_medical_record_number"
    HEALTH_PLAN_BENEFICIARY_NUMBER = "I_health_plan_beneficiary_number"
    ACCOUNT_NUMBER = "J_account_number"
    CERTIFICATE_LICENSE_NUMBER = "K_certificate_license_number"
    VEHICLE_IDENTIFIER = "L_vehicle_identifier"
    DEVICE_IDENTIFIER = "M_device_identifier"
    URL = "N_url"
    IP_ADDRESS = "O_ip_address"
    BIOMETRIC = "P_biometric"
    FULL_FACE_PHOTO = "Q_full_face_photo"
    OTHER_UNIQUE_ID = "R_other_unique_id"


class Category(StrEnum):
    IDENTIFIER = "identifier"
    PHI = "phi_not_identifier"
    REIDENTIFICATION_CODE = "reidentification_code"
    NOT_PHI = "not_phi"


class Group(StrEnum):
    """What the field is about; the role policy tests check views against these groups."""

    RECORD = "record"
    NAME = "name"
    DEMOGRAPHIC = "demographic"
    CONTACT = "contact"
    INSURANCE = "insurance"
    ENCOUNTER = "encounter"
    CLINICAL = "clinical"
    DOCUMENT = "document"


class Deid(StrEnum):
    """What Safe Harbor de-identification does with the field."""

    KEEP = "keep"  # not an identifier: passes through unchanged
    REMOVE = "remove"  # an identifier: removed
    YEAR = "year"  # (C) a date: only the year survives
    BIRTH_DATE = "birth_date"  # (C) birth date: year and age, both aggregated to "90+" over 89
    ZIP3 = "zip3"  # (B) ZIP: first three digits, "000" for restricted ZIP3 areas
    PSEUDONYM = "pseudonym"  # (R) internal id: replaced by a keyed pseudonym (164.514(c))
    DROP_FREE_TEXT = "drop_free_text"  # free text may hold any identifier: dropped, never scrubbed


_ALLOWED_DEID: dict[Category, frozenset[Deid]] = {
    Category.IDENTIFIER: frozenset({Deid.REMOVE, Deid.YEAR, Deid.BIRTH_DATE, Deid.ZIP3, Deid.PSEUDONYM}),
    Category.PHI: frozenset({Deid.KEEP, Deid.DROP_FREE_TEXT}),
    Category.REIDENTIFICATION_CODE: frozenset({Deid.KEEP}),
    Category.NOT_PHI: frozenset({Deid.KEEP, Deid.REMOVE}),
}
_KIND_DEID: dict[Deid, frozenset[IdentifierKind]] = {
    Deid.YEAR: frozenset({IdentifierKind.DATES}),
    Deid.BIRTH_DATE: frozenset({IdentifierKind.DATES}),
    Deid.ZIP3: frozenset({IdentifierKind.GEOGRAPHIC_SUBDIVISION}),
    Deid.PSEUDONYM: frozenset({IdentifierKind.OTHER_UNIQUE_ID, IdentifierKind.MEDICAL_RECORD_NUMBER}),
}


class ClassificationError(TypeError):
    pass


@dataclass(frozen=True)
class Classification:
    category: Category
    group: Group
    views: frozenset[str] = field(default_factory=frozenset)
    kind: IdentifierKind | None = None
    deid: Deid = Deid.KEEP
    token_kind: str | None = None  # for Deid.PSEUDONYM: the pseudonym namespace ("patient")
    note: str = ""

    def __post_init__(self) -> None:
        if (self.category is Category.IDENTIFIER) != (self.kind is not None):
            raise ClassificationError("an identifier names its Safe Harbor kind; nothing else does")
        if self.deid not in _ALLOWED_DEID[self.category]:
            raise ClassificationError(f"de-identification {self.deid} is not allowed for {self.category}")
        kinds = _KIND_DEID.get(self.deid)
        if kinds is not None and self.kind not in kinds:
            raise ClassificationError(f"de-identification {self.deid} does not apply to {self.kind}")
        if (self.deid is Deid.PSEUDONYM) != (self.token_kind is not None):
            raise ClassificationError("a pseudonymised field names its token kind, and only it")
        unknown = self.views - set(VIEW_NAMES)
        if unknown:
            raise ClassificationError(f"unknown views {sorted(unknown)}")
        if RESEARCHER in self.views and self.deid in (Deid.REMOVE, Deid.DROP_FREE_TEXT):
            raise ClassificationError(
                "the researcher view cannot list a field that de-identification removes"
            )

    @property
    def label(self) -> str:
        return str(self.kind) if self.kind is not None else str(self.category)


def _views(views: tuple[str, ...]) -> frozenset[str]:
    return frozenset(views)


def identifier(
    kind: IdentifierKind,
    group: Group,
    *views: str,
    deid: Deid = Deid.REMOVE,
    token_kind: str | None = None,
    note: str = "",
) -> Classification:
    return Classification(Category.IDENTIFIER, group, _views(views), kind, deid, token_kind, note)


def phi(group: Group, *views: str, free_text: bool = False, note: str = "") -> Classification:
    deid = Deid.DROP_FREE_TEXT if free_text else Deid.KEEP
    return Classification(Category.PHI, group, _views(views), None, deid, None, note)


def reidentification_code(group: Group, *views: str, note: str = "") -> Classification:
    return Classification(Category.REIDENTIFICATION_CODE, group, _views(views), note=note)


def not_phi(group: Group, *views: str, note: str = "") -> Classification:
    return Classification(Category.NOT_PHI, group, _views(views), note=note)


def classification_of(model: type[BaseModel], name: str) -> Classification:
    """The field's classification; a field without one is a programming error."""
    found = [m for m in model.model_fields[name].metadata if isinstance(m, Classification)]
    if len(found) != 1:
        raise ClassificationError(f"{model.__name__}.{name} must carry exactly one Classification")
    return found[0]


def unclassified_fields(model: type[BaseModel]) -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        if sum(isinstance(m, Classification) for m in info.metadata) != 1:
            missing.append(name)
    return missing


def classified_fields(model: type[BaseModel]) -> Iterator[tuple[str, Classification]]:
    for name in model.model_fields:
        yield name, classification_of(model, name)


def view_fields(model: type[BaseModel], view: str) -> tuple[str, ...]:
    """The fields `view` may show, in declaration order: only those whose classification names it."""
    if view not in VIEW_NAMES:
        raise KeyError(view)
    return tuple(name for name, c in classified_fields(model) if view in c.views)
