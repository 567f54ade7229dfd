"""Strict inbound parsing: 400 with field paths and codes only, never the rejected values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed
from shared.problem import problem_response
from shared.schemas.lab_results import LabResultIn
from shared.schemas.patients import PatientCreate, PatientUpdate
from shared.schemas.validation import parse_body
from tests.fixtures.data import patient_create_body

# PHI-looking values (synthetic) that must never be echoed back.
CANARY_SSN = "123-45-6789"
CANARY_NAME = "Zebulon Q. Canary"
CANARY_EMAIL = "zebulon.canary@example.org"


def _fail(model: Any, body: Any, max_bytes: int = 64 * 1024) -> ValidationFailed:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ValidationFailed) as caught:
        parse_body(model, raw, max_bytes)
    return caught.value


def test_a_valid_body_parses() -> None:
    parsed = parse_body(PatientCreate, json.dumps(patient_create_body()).encode(), 64 * 1024)
    assert parsed.given_name == "Avery"
    assert str(parsed.birth_date) == "1961-04-12"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("mrn", f"mrn {CANARY_SSN}", "string_pattern_mismatch"),
        ("given_name", CANARY_NAME * 10, "string_too_long"),
        ("given_name", "", "string_too_short"),
        ("phone", "555-0123 " + CANARY_NAME, "string_pattern_mismatch"),
        ("email", CANARY_NAME, "string_pattern_mismatch"),
        ("birth_date", "12/04/1961", "date_parsing"),
        ("birth_date", "2999-01-01", "value_error"),
        ("birth_date", 19610412, "date_type"),
        ("postal_code", "0213", "string_pattern_mismatch"),
        ("state", "Massachusetts", "string_pattern_mismatch"),
        ("sex", CANARY_NAME, "literal_error"),
        ("mrn", 12345678, "string_type"),
        ("allergies", [CANARY_SSN], "string_pattern_mismatch"),
        ("problems", ["E11.9"] * 101, "too_long"),
        ("note", CANARY_NAME * 300, "string_too_long"),
    ],
)
def test_invalid_fields_report_path_and_code_only(field: str, value: Any, code: str) -> None:
    error = _fail(PatientCreate, patient_create_body(**{field: value}))
    assert error.status == 400
    assert [e["path"].split(".")[0] for e in error.errors] == [field]
    assert error.errors[0]["code"] == code
    for entry in error.errors:
        assert set(entry) == {"path", "code"}
    rendered = problem_response(error, "c").get_body().decode() + repr(error) + str(error)
    for canary in (CANARY_SSN, CANARY_NAME, "Zebulon", "12/04/1961", "555-0123", "Massachusetts"):
        assert canary not in rendered


def test_nested_paths_use_indices() -> None:
    error = _fail(PatientCreate, patient_create_body(allergies=["227493005", "bad"]))
    assert error.errors == ({"path": "allergies.1", "code": "string_pattern_mismatch"},)


def test_an_unknown_field_is_refused_without_naming_it() -> None:
    body = patient_create_body()
    body[CANARY_NAME] = CANARY_SSN
    error = _fail(PatientCreate, body)
    assert error.errors == ({"path": "*", "code": "extra_forbidden"},)
    assert CANARY_NAME not in problem_response(error, "c").get_body().decode()


def test_the_original_validation_error_is_not_chained() -> None:
    error = _fail(PatientCreate, patient_create_body(mrn=CANARY_SSN))
    assert error.__cause__ is None and error.__context__ is None


def test_missing_fields_are_reported() -> None:
    error = _fail(PatientCreate, {"mrn": "MRN123456"})
    assert {e["path"] for e in error.errors} == {"given_name", "family_name", "birth_date", "sex"}
    assert {e["code"] for e in error.errors} == {"missing"}


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff\xfe", b"[1, 2", b"{'a': 1}", b"NaN"])
def test_malformed_json_is_a_400_with_a_stable_code(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(PatientCreate, raw, 1024)
    assert caught.value.status == 400
    assert caught.value.code in ("malformed_json", "validation_failed")


def test_malformed_json_code() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(PatientCreate, b'{"mrn": "' + CANARY_SSN.encode(), 1024)
    assert caught.value.code == "malformed_json"
    assert CANARY_SSN not in repr(caught.value.errors)


def test_a_non_object_body_is_a_validation_failure() -> None:
    error = _fail(PatientCreate, [1, 2, 3])
    assert error.errors[0]["path"] == "$"


def test_the_size_limit_is_enforced_before_parsing() -> None:
    body = json.dumps(patient_create_body()).encode()
    with pytest.raises(PayloadTooLarge) as caught:
        parse_body(PatientCreate, body, len(body) - 1)
    assert caught.value.status == 413
    assert parse_body(PatientCreate, body, len(body)).mrn


def test_update_accepts_a_partial_body_and_rejects_an_mrn_change() -> None:
    parsed = parse_body(PatientUpdate, b'{"phone": "+15555550199"}', 1024)
    assert parsed.model_dump(exclude_unset=True) == {"phone": "+15555550199"}
    error = _fail(PatientUpdate, {"mrn": "MRN999999"})
    assert error.errors == ({"path": "*", "code": "extra_forbidden"},)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "glucose"),
        ("unit", "mg per dL"),
        ("effective_at", "2024-01-01T10:00:00"),  # no offset
        ("version", 0),
        ("version", "2"),
    ],
)
def test_lab_result_formats(field: str, value: Any) -> None:
    body = {
        "lab_order_id": "ORD-1001",
        "version": 1,
        "patient_mrn": "MRN123456",
        "code": "2345-7",
        "value": "98",
        "unit": "mg/dL",
        "effective_at": "2024-01-01T10:00:00Z",
    }
    assert parse_body(LabResultIn, json.dumps(body).encode(), 4096).code == "2345-7"
    error = _fail(LabResultIn, {**body, field: value})
    assert error.errors[0]["path"] == field


def test_update_cannot_clear_a_required_field() -> None:
    error = _fail(PatientUpdate, {"family_name": None})
    assert error.errors == ({"path": "$", "code": "value_error"},)
    assert parse_body(PatientUpdate, b'{"email": null}', 1024).model_dump(exclude_unset=True) == {
        "email": None
    }
