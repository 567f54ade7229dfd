"""Patient: strict Create/Update bodies, the stored record, and per-role read models.

Each field's classification is declared once in `F` and attached to every model that carries the
field, so Create, Update, stored and read models cannot disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from shared.schemas import classification as c
from shared.schemas.classification import BILLING, CLINICIAN, INTAKE, RESEARCHER, Deid, Group, IdentifierKind
from shared.schemas.types import (
    INBOUND,
    STORED,
    AddressLine,
    AllergyList,
    City,
    Email,
    FreeText,
    MemberId,
    Mrn,
    PastDate,
    Payer,
    PersonName,
    Phone,
    ProblemList,
    Sex,
    UsState,
    Zip,
)

K = IdentifierKind


class F:
    """The classification of each patient field (the single source for views, de-id and inventory)."""

    id = c.identifier(
        K.OTHER_UNIQUE_ID,
        Group.RECORD,
        CLINICIAN,
        INTAKE,
        BILLING,
        RESEARCHER,
        deid=Deid.PSEUDONYM,
        token_kind="patient",  # noqa: S106 - a namespace name
        note="random UUID; researchers see only a keyed pseudonym",
    )
    mrn = c.identifier(K.MEDICAL_RECORD_NUMBER, Group.RECORD, CLINICIAN, INTAKE)
    given_name = c.identifier(K.NAMES, Group.NAME, CLINICIAN, INTAKE, BILLING)
    family_name = c.identifier(K.NAMES, Group.NAME, CLINICIAN, INTAKE, BILLING)
    birth_date = c.identifier(K.DATES, Group.DEMOGRAPHIC, CLINICIAN, INTAKE, RESEARCHER, deid=Deid.BIRTH_DATE)
    sex = c.phi(Group.DEMOGRAPHIC, CLINICIAN, INTAKE, RESEARCHER)
    phone = c.identifier(K.TELEPHONE, Group.CONTACT, CLINICIAN, INTAKE)
    email = c.identifier(K.EMAIL, Group.CONTACT, CLINICIAN, INTAKE)
    address_line = c.identifier(K.GEOGRAPHIC_SUBDIVISION, Group.CONTACT, CLINICIAN, INTAKE)
    city = c.identifier(K.GEOGRAPHIC_SUBDIVISION, Group.CONTACT, CLINICIAN, INTAKE)
    state = c.phi(
        Group.DEMOGRAPHIC, CLINICIAN, INTAKE, RESEARCHER, note="a state is not a Safe Harbor identifier"
    )
    postal_code = c.identifier(
        K.GEOGRAPHIC_SUBDIVISION, Group.CONTACT, CLINICIAN, INTAKE, RESEARCHER, deid=Deid.ZIP3
    )
    insurance_payer = c.phi(Group.INSURANCE, CLINICIAN, BILLING)
    insurance_member_id = c.identifier(K.HEALTH_PLAN_BENEFICIARY_NUMBER, Group.INSURANCE, CLINICIAN, BILLING)
    admission_date = c.identifier(K.DATES, Group.ENCOUNTER, CLINICIAN, BILLING, RESEARCHER, deid=Deid.YEAR)
    discharge_date = c.identifier(K.DATES, Group.ENCOUNTER, CLINICIAN, BILLING, RESEARCHER, deid=Deid.YEAR)
    allergies = c.phi(Group.CLINICAL, CLINICIAN, RESEARCHER, note="coded")
    problems = c.phi(Group.CLINICAL, CLINICIAN, RESEARCHER, note="ICD-10-like codes")
    note = c.phi(Group.CLINICAL, CLINICIAN, free_text=True)
    legal_hold = c.not_phi(Group.RECORD, note="retention control; shown to no role")
    created_at = c.identifier(K.DATES, Group.RECORD, CLINICIAN)
    updated_at = c.identifier(K.DATES, Group.RECORD, CLINICIAN)


class PatientCreate(BaseModel):
    model_config = INBOUND

    mrn: Annotated[Mrn, F.mrn]
    given_name: Annotated[PersonName, F.given_name]
    family_name: Annotated[PersonName, F.family_name]
    birth_date: Annotated[PastDate, F.birth_date]
    sex: Annotated[Sex, F.sex]
    phone: Annotated[Phone | None, F.phone] = None
    email: Annotated[Email | None, F.email] = None
    address_line: Annotated[AddressLine | None, F.address_line] = None
    city: Annotated[City | None, F.city] = None
    state: Annotated[UsState | None, F.state] = None
    postal_code: Annotated[Zip | None, F.postal_code] = None
    insurance_payer: Annotated[Payer | None, F.insurance_payer] = None
    insurance_member_id: Annotated[MemberId | None, F.insurance_member_id] = None
    admission_date: Annotated[PastDate | None, F.admission_date] = None
    discharge_date: Annotated[PastDate | None, F.discharge_date] = None
    allergies: Annotated[AllergyList, F.allergies] = Field(default_factory=list)
    problems: Annotated[ProblemList, F.problems] = Field(default_factory=list)
    note: Annotated[FreeText | None, F.note] = None


class PatientUpdate(BaseModel):
    """A partial update: only the fields present are changed. The MRN and the id never change."""

    model_config = INBOUND

    given_name: Annotated[PersonName | None, F.given_name] = None
    family_name: Annotated[PersonName | None, F.family_name] = None
    birth_date: Annotated[PastDate | None, F.birth_date] = None
    sex: Annotated[Sex | None, F.sex] = None
    phone: Annotated[Phone | None, F.phone] = None
    email: Annotated[Email | None, F.email] = None
    address_line: Annotated[AddressLine | None, F.address_line] = None
    city: Annotated[City | None, F.city] = None
    state: Annotated[UsState | None, F.state] = None
    postal_code: Annotated[Zip | None, F.postal_code] = None
    insurance_payer: Annotated[Payer | None, F.insurance_payer] = None
    insurance_member_id: Annotated[MemberId | None, F.insurance_member_id] = None
    admission_date: Annotated[PastDate | None, F.admission_date] = None
    discharge_date: Annotated[PastDate | None, F.discharge_date] = None
    allergies: Annotated[AllergyList | None, F.allergies] = None
    problems: Annotated[ProblemList | None, F.problems] = None
    note: Annotated[FreeText | None, F.note] = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> PatientUpdate:
        for name in _REQUIRED:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError("a required field cannot be cleared")
        return self


_REQUIRED = ("given_name", "family_name", "birth_date", "sex")


class PatientRecord(BaseModel):
    """The stored patient (table `patients`)."""

    model_config = STORED

    id: Annotated[str, F.id]
    mrn: Annotated[str, F.mrn]
    given_name: Annotated[str, F.given_name]
    family_name: Annotated[str, F.family_name]
    birth_date: Annotated[date, F.birth_date]
    sex: Annotated[Sex, F.sex]
    phone: Annotated[str | None, F.phone] = None
    email: Annotated[str | None, F.email] = None
    address_line: Annotated[str | None, F.address_line] = None
    city: Annotated[str | None, F.city] = None
    state: Annotated[str | None, F.state] = None
    postal_code: Annotated[str | None, F.postal_code] = None
    insurance_payer: Annotated[str | None, F.insurance_payer] = None
    insurance_member_id: Annotated[str | None, F.insurance_member_id] = None
    admission_date: Annotated[date | None, F.admission_date] = None
    discharge_date: Annotated[date | None, F.discharge_date] = None
    allergies: Annotated[tuple[str, ...], F.allergies] = ()
    problems: Annotated[tuple[str, ...], F.problems] = ()
    note: Annotated[str | None, F.note] = None
    legal_hold: Annotated[bool, F.legal_hold] = False
    created_at: Annotated[datetime, F.created_at]
    updated_at: Annotated[datetime, F.updated_at]
