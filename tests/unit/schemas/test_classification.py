"""Classification is on every field, and the role views are allow-lists derived from it."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel

from shared.deid import deidentified_model
from shared.schemas import classification as c
from shared.schemas.classification import (
    BILLING,
    CLINICIAN,
    INTAKE,
    RESEARCHER,
    VIEW_NAMES,
    Category,
    Classification,
    ClassificationError,
    Deid,
    Group,
    IdentifierKind,
    classification_of,
    unclassified_fields,
    view_fields,
)
from shared.schemas.documents import DocumentRecord
from shared.schemas.events import DocumentReceived, OutboundEvent
from shared.schemas.lab_results import LabResultRecord
from shared.schemas.patients import PatientRecord
from shared.schemas.registry import MODELS
from shared.schemas.views import read_model

STORED = [e.model for e in MODELS if e.kind == "stored"]


def all_transmitted_models() -> list[type[BaseModel]]:
    models = [e.model for e in MODELS]
    for stored in STORED:
        models += [read_model(stored, view) for view in VIEW_NAMES]
    return models


def test_there_are_exactly_18_safe_harbor_identifier_kinds() -> None:
    assert len(IdentifierKind) == 18
    assert [k.value[0] for k in IdentifierKind] == list("ABCDEFGHIJKLMNOPQR")


@pytest.mark.parametrize("model", all_transmitted_models(), ids=lambda m: m.__name__)
def test_every_field_of_every_stored_or_transmitted_model_is_classified(model: type[BaseModel]) -> None:
    assert unclassified_fields(model) == []


def test_an_unclassified_field_is_detected() -> None:
    class Leaky(PatientRecord):
        ssn: str | None = None

    assert unclassified_fields(Leaky) == ["ssn"]
    with pytest.raises(ClassificationError):
        classification_of(Leaky, "ssn")


@pytest.mark.parametrize("stored", STORED, ids=lambda m: m.__name__)
def test_a_new_stored_field_appears_in_no_view(stored: type[BaseModel]) -> None:
    # Classified as the most sensitive kind, but naming no view: it must show up nowhere.
    new_field = c.identifier(IdentifierKind.SSN, Group.DEMOGRAPHIC)
    extended = type(
        f"Extended{stored.__name__}",
        (stored,),
        {"__annotations__": {"ssn": Annotated[str | None, new_field]}, "ssn": None},
    )
    assert "ssn" in extended.model_fields
    for view in VIEW_NAMES:
        assert "ssn" not in read_model(extended, view).model_fields
        assert set(read_model(extended, view).model_fields) == set(read_model(stored, view).model_fields)


def _groups(model: type[BaseModel], view: str) -> set[Group]:
    return {classification_of(model, name).group for name in view_fields(model, view)}


def test_intake_sees_demographics_but_nothing_clinical() -> None:
    fields = set(read_model(PatientRecord, INTAKE).model_fields)
    assert {"given_name", "family_name", "birth_date", "phone", "address_line", "postal_code"} <= fields
    assert not fields & {"allergies", "problems", "note", "insurance_member_id"}
    assert Group.CLINICAL not in _groups(PatientRecord, INTAKE)
    assert Group.CLINICAL not in _groups(LabResultRecord, INTAKE)


def test_billing_sees_name_insurance_and_encounter_dates_only() -> None:
    fields = set(read_model(PatientRecord, BILLING).model_fields)
    assert fields == {
        "id",
        "given_name",
        "family_name",
        "insurance_payer",
        "insurance_member_id",
        "admission_date",
        "discharge_date",
    }
    for model in STORED:
        assert _groups(model, BILLING) <= {Group.RECORD, Group.NAME, Group.INSURANCE, Group.ENCOUNTER}


def test_clinician_sees_the_full_clinical_record() -> None:
    fields = set(read_model(PatientRecord, CLINICIAN).model_fields)
    assert {"allergies", "problems", "note", "mrn", "birth_date"} <= fields
    assert "legal_hold" not in fields


def test_researcher_view_has_no_identifier_and_no_free_text() -> None:
    for model in STORED:
        view = read_model(model, RESEARCHER)
        assert view is deidentified_model(model, RESEARCHER)
        for name in view.model_fields:
            cl = classification_of(view, name)
            assert cl.category is not Category.IDENTIFIER, (model.__name__, name)
            assert cl.deid is not Deid.DROP_FREE_TEXT
    fields = set(read_model(PatientRecord, RESEARCHER).model_fields)
    assert not fields & {
        "id",
        "mrn",
        "given_name",
        "family_name",
        "birth_date",
        "postal_code",
        "note",
        "phone",
    }
    assert {"patient_token", "birth_year", "age", "zip3", "admission_year"} <= fields


def test_read_models_reject_unknown_fields() -> None:
    view = read_model(PatientRecord, BILLING)
    with pytest.raises(ValueError, match="extra"):
        view.model_validate({"id": "x", "given_name": "a", "family_name": "b", "note": "secret"})


def test_unknown_view_is_refused() -> None:
    with pytest.raises(KeyError):
        read_model(PatientRecord, "admin")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Classification(Category.IDENTIFIER, Group.NAME),  # identifier without its kind
        lambda: Classification(Category.PHI, Group.CLINICAL, kind=IdentifierKind.NAMES),
        lambda: c.identifier(IdentifierKind.NAMES, Group.NAME, RESEARCHER),  # removed, yet in research view
        lambda: c.identifier(IdentifierKind.NAMES, Group.NAME, deid=Deid.YEAR),  # a year of a name
        lambda: c.identifier(IdentifierKind.DATES, Group.RECORD, deid=Deid.ZIP3),
        lambda: c.identifier(IdentifierKind.OTHER_UNIQUE_ID, Group.RECORD, deid=Deid.PSEUDONYM),  # no kind
        lambda: c.phi(Group.CLINICAL, RESEARCHER, free_text=True),
        lambda: c.not_phi(Group.RECORD, "admin"),
    ],
)
def test_inconsistent_classifications_are_refused(build: object) -> None:
    with pytest.raises(ClassificationError):
        build()  # type: ignore[operator]


def test_an_event_schema_cannot_declare_an_identifier() -> None:
    with pytest.raises(ClassificationError):

        class LeakyEvent(OutboundEvent):
            mrn: Annotated[str, c.identifier(IdentifierKind.MEDICAL_RECORD_NUMBER, Group.RECORD)]


def test_the_outbound_event_carries_only_codes_and_non_phi() -> None:
    for name in DocumentReceived.model_fields:
        assert classification_of(DocumentReceived, name).category in (
            Category.NOT_PHI,
            Category.REIDENTIFICATION_CODE,
        )


def test_documents_are_not_shown_to_billing_or_researchers() -> None:
    assert read_model(DocumentRecord, BILLING).model_fields == {}
    assert "blob_name" not in read_model(DocumentRecord, CLINICIAN).model_fields
