"""Safe Harbor de-identification, 45 CFR 164.514(b)(2), driven by the fields' classifications.

Applies to the researcher view and to every event that leaves the PHI store:
- every identifier kind present in the model is removed (`Deid.REMOVE`);
- dates keep only their year (`Deid.YEAR`);
- a birth date becomes a birth year and an age; over 89 both collapse to the category "90+"
  (the rule covers "all elements of dates (including year) indicative of such age");
- a ZIP keeps its first three digits, or "000" for a restricted ZIP3 area (`shared.zip3`);
- free text is dropped, never scrubbed: a scrubber misses what it does not know to look for;
- our internal ids become keyed pseudonyms (a re-identification code, 164.514(c)).

Nothing here knows field names: adding a field to a model changes the output only through the field's
classification.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, create_model

from shared.schemas.classification import (
    RESEARCHER,
    Classification,
    Deid,
    classified_fields,
    deid_kind,
    not_phi,
    reidentification_code,
)
from shared.zip3 import Census, zip3

AGE_CEILING = 89
OVER_CEILING = "90+"


class Pseudonymizer(Protocol):
    def pseudonym(self, kind: str, stable_id: str) -> str: ...


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _stem(name: str) -> str:
    for suffix in ("_date", "_at", "_time"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class OutputField:
    name: str
    annotation: Any
    classification: Classification
    source: str


@cache
def output_fields(model: type[BaseModel], view: str | None = RESEARCHER) -> tuple[OutputField, ...]:
    """The de-identified fields produced from `model` (for one view, or for every field with view=None)."""
    out: list[OutputField] = []
    for name, c in classified_fields(model):
        if view is not None and view not in c.views:
            continue
        views = c.views & {RESEARCHER}
        match c.deid:
            case Deid.REMOVE | Deid.DROP_FREE_TEXT:
                continue
            case Deid.KEEP:
                out.append(OutputField(name, model.model_fields[name].annotation, c, name))
            case Deid.YEAR:
                yc = not_phi(c.group, *views, note=f"year of {name} (Safe Harbor)")
                out.append(OutputField(f"{_stem(name)}_year", int | None, yc, name))
            case Deid.BIRTH_DATE:
                by = not_phi(c.group, *views, note=f"year of {name}; removed when the age is over 89")
                age = not_phi(c.group, *views, note=f"age from {name}; over 89 reported as '90+'")
                out.append(OutputField(f"{_stem(name)}_year", int | None, by, name))
                out.append(OutputField("age", int | Literal["90+"] | None, age, name))
            case Deid.ZIP3:
                zc = not_phi(c.group, *views, note=f"first three digits of {name}, '000' if restricted")
                out.append(OutputField("zip3", str | None, zc, name))
            case Deid.PSEUDONYM:
                tc = reidentification_code(c.group, *views, note=f"keyed pseudonym of {name}")
                out.append(OutputField(f"{c.token_kind}_token", str, tc, name))
    names = [f.name for f in out]
    if len(names) != len(set(names)):
        raise TypeError(f"{model.__name__}: de-identified field names collide: {sorted(names)}")
    return tuple(out)


@cache
def deidentified_model(model: type[BaseModel], view: str | None = RESEARCHER) -> type[BaseModel]:
    """A pydantic model of the de-identified output, each field carrying its own classification."""
    fields: dict[str, Any] = {
        f.name: (Annotated[f.annotation, f.classification], ...) for f in output_fields(model, view)
    }
    suffix = "Researcher" if view == RESEARCHER else "Deidentified"
    created: type[BaseModel] = create_model(
        f"{model.__name__.removesuffix('Record')}{suffix}",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )
    return created


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class SafeHarbor:
    pseudonymizer: Pseudonymizer
    census: Census = "2010"
    today: Callable[[], date] = field(default=_utc_today)

    def deidentify(self, record: BaseModel, view: str | None = RESEARCHER) -> dict[str, Any]:
        """The de-identified form of `record` as a validated, JSON-ready dict."""
        values = dict(self._values(record, view))
        model = deidentified_model(type(record), view)
        return model.model_validate(values).model_dump(mode="json")

    def _values(self, record: BaseModel, view: str | None) -> Iterator[tuple[str, Any]]:
        for f in output_fields(type(record), view):
            raw = getattr(record, f.source)
            deid = _rule_of(record, f.source)
            if raw is None:
                yield f.name, None
                continue
            match deid:
                case Deid.KEEP:
                    yield f.name, raw
                case Deid.YEAR:
                    yield f.name, self.year(raw)
                case Deid.BIRTH_DATE:
                    age = age_on(_as_date(raw), self.today())
                    if f.name == "age":
                        yield f.name, OVER_CEILING if age > AGE_CEILING else age
                    else:
                        yield f.name, None if age > AGE_CEILING else _as_date(raw).year
                case Deid.ZIP3:
                    yield f.name, zip3(str(raw), self.census)
                case Deid.PSEUDONYM:
                    token_kind = _classification(record, f.source).token_kind
                    assert token_kind is not None  # Classification guarantees it for PSEUDONYM
                    yield f.name, self.pseudonymizer.pseudonym(deid_kind(token_kind), str(raw))
                case _:
                    raise AssertionError(f"unexpected rule {deid}")

    @staticmethod
    def year(value: date | datetime) -> int:
        return value.year

    def token(self, kind: str, stable_id: str) -> str:
        return self.pseudonymizer.pseudonym(kind, stable_id)


@cache
def _classifications(model: type[BaseModel]) -> dict[str, Classification]:
    return dict(classified_fields(model))


def _classification(record: BaseModel, name: str) -> Classification:
    return _classifications(type(record))[name]


def _rule_of(record: BaseModel, name: str) -> Deid:
    return _classification(record, name).deid


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
