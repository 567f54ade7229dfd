"""Safe Harbor, 45 CFR 164.514(b)(2): one table row per identifier rule, plus property tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.deid import SafeHarbor, age_on
from shared.schemas.classification import DEID_PATIENT_KIND, Category, classified_fields
from shared.schemas.lab_results import LabResultRecord
from shared.schemas.patients import PatientRecord
from shared.schemas.views import render
from shared.zip3 import RESTRICTED_ZIP3_2000, RESTRICTED_ZIP3_2010, restricted_zip3, zip3
from tests.fixtures.data import FIXED_NOW, FakePseudonymizer, patient_record

TODAY = FIXED_NOW.date()


def harbor(census: Any = "2010") -> SafeHarbor:
    return SafeHarbor(FakePseudonymizer(), census=census, today=lambda: TODAY)


def test_both_census_lists_ship_with_the_documented_sizes() -> None:
    assert len(RESTRICTED_ZIP3_2000) == 17
    assert len(RESTRICTED_ZIP3_2010) == 14
    assert {"205", "369"} == RESTRICTED_ZIP3_2010 - RESTRICTED_ZIP3_2000
    assert {"063", "790", "830", "831", "890"} == RESTRICTED_ZIP3_2000 - RESTRICTED_ZIP3_2010


@pytest.mark.parametrize(
    ("postal", "census", "expected"),
    [
        ("02139", "2010", "021"),
        ("03601", "2010", "000"),  # 036 restricted in both
        ("20599", "2010", "000"),  # 205 restricted only in 2010
        ("20599", "2000", "205"),
        ("06390", "2000", "000"),  # 063 restricted only in 2000
        ("06390", "2010", "063"),
        ("89301-1234", "2000", "000"),
        ("1", "2010", "000"),  # too short to generalise: suppressed
    ],
)
def test_zip3(postal: str, census: Any, expected: str) -> None:
    assert zip3(postal, census) == expected
    assert restricted_zip3(census) in (RESTRICTED_ZIP3_2000, RESTRICTED_ZIP3_2010)


# One row per rule present in the model: (what, record overrides, output key, expected output).
RULES = [
    ("A names removed", {}, "given_name", None),
    ("A names removed", {}, "family_name", None),
    ("B street removed", {}, "address_line", None),
    ("B city removed", {}, "city", None),
    ("B ZIP -> zip3", {"postal_code": "02139"}, "zip3", "021"),
    ("B restricted ZIP -> 000", {"postal_code": "69201"}, "zip3", "000"),
    ("B state kept", {"state": "MA"}, "state", "MA"),
    ("C birth date -> year", {"birth_date": date(1961, 4, 12)}, "birth_year", 1961),
    ("C age kept at 89", {"birth_date": date(1935, 6, 2)}, "age", 89),
    ("C age over 89 -> 90+", {"birth_date": date(1930, 1, 1)}, "age", "90+"),
    ("C admission -> year", {"admission_date": date(2024, 2, 3)}, "admission_year", 2024),
    ("C discharge -> year", {"discharge_date": date(2024, 2, 9)}, "discharge_year", 2024),
    ("C record timestamps removed", {}, "created_at", None),
    ("D telephone removed", {}, "phone", None),
    ("F email removed", {}, "email", None),
    ("H MRN removed", {}, "mrn", None),
    ("I member id removed", {}, "insurance_member_id", None),
    (
        "R id -> pseudonym",
        {"id": "p-1"},
        "patient_token",
        FakePseudonymizer().pseudonym(DEID_PATIENT_KIND, "p-1"),
    ),
    ("free text dropped", {}, "note", None),
    ("clinical codes kept", {"problems": ("E11.9",)}, "problems", ["E11.9"]),
]


@pytest.mark.parametrize(("rule", "overrides", "key", "expected"), RULES, ids=[r[0] for r in RULES])
def test_rule(rule: str, overrides: dict[str, Any], key: str, expected: Any) -> None:
    out = render(patient_record(**overrides), "researcher", harbor())
    if expected is None:
        assert key not in out
    else:
        assert out[key] == expected


@pytest.mark.parametrize(
    ("birth", "age", "birth_year"),
    [
        (date(1936, 6, 2), 88, 1936),
        (date(1935, 6, 2), 89, 1935),  # 89 today: still an age and a year
        (date(1935, 6, 1), "90+", None),  # turns 90 today: aggregated, year removed
        (date(1900, 1, 1), "90+", None),
        (date(2025, 6, 1), 0, 2025),
    ],
)
def test_ages_over_89_become_90_plus_and_lose_the_year(birth: date, age: Any, birth_year: Any) -> None:
    out = render(patient_record(birth_date=birth), "researcher", harbor())
    assert out["age"] == age
    assert out["birth_year"] == birth_year
    assert str(birth.year) not in {str(v) for v in out.values()} or birth_year is not None


def test_age_on_birthdays() -> None:
    assert age_on(date(2000, 2, 29), date(2025, 2, 28)) == 24
    assert age_on(date(2000, 2, 29), date(2025, 3, 1)) == 25


def test_census_setting_selects_the_list() -> None:
    record = patient_record(postal_code="20599")
    assert render(record, "researcher", harbor("2010"))["zip3"] == "000"
    assert render(record, "researcher", harbor("2000"))["zip3"] == "205"


def test_lab_result_is_deidentified_too() -> None:
    lab = LabResultRecord(
        lab_order_id="ORD-9",
        version=2,
        patient_id="p-9",
        code="2345-7",
        value="98",
        unit="mg/dL",
        effective_at=datetime(2024, 3, 5, 9, 30, tzinfo=UTC),
        received_at=FIXED_NOW,
    )
    out = render(lab, "researcher", harbor())
    assert out == {
        "version": 2,
        "patient_token": FakePseudonymizer().pseudonym(DEID_PATIENT_KIND, "p-9"),
        "code": "2345-7",
        "value": "98",
        "unit": "mg/dL",
        "effective_year": 2024,
    }


def test_researcher_view_requires_the_transformer() -> None:
    with pytest.raises(ValueError, match="SafeHarbor"):
        render(patient_record(), "researcher")


# ---------------------------------------------------------------------------- property tests
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=40
)
_dates = st.dates(min_value=date(1880, 1, 1), max_value=TODAY)


def _identifier_values(record: PatientRecord) -> set[str]:
    values: set[str] = set()
    for name, cl in classified_fields(PatientRecord):
        value = getattr(record, name)
        if cl.category is Category.IDENTIFIER and value is not None:
            values.add(value.isoformat() if isinstance(value, date | datetime) else str(value))
    return values


def _output_values(out: dict[str, Any]) -> set[str]:
    flat: set[str] = set()
    for value in out.values():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                flat.add(str(item))
    return flat


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pid=_text,
    mrn=st.from_regex(r"[A-Z0-9]{6,20}", fullmatch=True),
    given_name=_text,
    family_name=_text,
    birth=_dates,
    phone=st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    email=st.emails(),
    address=_text,
    city=_text,
    postal=st.from_regex(r"[0-9]{5}", fullmatch=True),
    member=st.from_regex(r"[A-Za-z0-9-]{4,30}", fullmatch=True),
    admission=st.none() | _dates,
    note=_text,
    census=st.sampled_from(["2000", "2010"]),
)
def test_no_output_field_ever_equals_an_input_identifier(**kw: Any) -> None:
    record = patient_record(
        id=kw["pid"],
        mrn=kw["mrn"],
        given_name=kw["given_name"],
        family_name=kw["family_name"],
        birth_date=kw["birth"],
        phone=kw["phone"],
        email=kw["email"],
        address_line=kw["address"],
        city=kw["city"],
        postal_code=kw["postal"],
        insurance_member_id=kw["member"],
        admission_date=kw["admission"],
        note=kw["note"],
    )
    identifiers = _identifier_values(record)
    # Values the rules allow out (sex, state, codes, years, the age, zip3) may equal a random
    # identifier by chance ("2000" as a member id and a birth year); that is not a leak, so such
    # draws are skipped. The allowed values are computed here independently of shared.deid.
    years = {record.birth_date.year, *(d.year for d in (record.admission_date, record.discharge_date) if d)}
    allowed = {record.sex, record.state, *record.allergies, *record.problems, *years}
    allowed |= {age_on(record.birth_date, TODAY), "90+", kw["postal"][:3], "000"}
    assume(not (identifiers & {str(v) for v in allowed}))
    out = render(record, "researcher", harbor(kw["census"]))
    leaked = identifiers & _output_values(out)
    assert not leaked
    assert "note" not in out
    if kw["note"] not in {str(v) for v in allowed}:  # a note of "0" may equal an allowed age by chance
        assert kw["note"] not in _output_values(out)
    assert out["zip3"] == "000" or (
        out["zip3"] == kw["postal"][:3] and kw["postal"][:3] not in restricted_zip3(kw["census"])
    )
    if out["age"] == "90+":
        assert out["birth_year"] is None


@settings(max_examples=100, deadline=None)
@given(birth=_dates)
def test_property_ages_over_89_never_reveal_the_birth_year(birth: date) -> None:
    out = render(patient_record(birth_date=birth), "researcher", harbor())
    if age_on(birth, TODAY) > 89:
        assert out["age"] == "90+" and out["birth_year"] is None
    else:
        assert out["age"] == age_on(birth, TODAY) and out["birth_year"] == birth.year
