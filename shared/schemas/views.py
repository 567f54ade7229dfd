"""Per-role read models, generated from the stored models' classifications.

A field is in a view only if its classification names that view, so a field added to a stored model
appears nowhere until someone classifies it for a view. The researcher view is the Safe Harbor output
of `shared.deid`, never the stored record.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from shared.deid import SafeHarbor, deidentified_model
from shared.schemas.classification import RESEARCHER, VIEW_NAMES, view_fields

_READ = ConfigDict(extra="forbid", frozen=True)


@cache
def read_model(stored: type[BaseModel], view: str) -> type[BaseModel]:
    """The read model of `stored` for `view`: exactly the fields whose classification names the view."""
    if view not in VIEW_NAMES:
        raise KeyError(view)
    if view == RESEARCHER:
        return deidentified_model(stored, RESEARCHER)
    fields: dict[str, Any] = {}
    for name in view_fields(stored, view):
        info = stored.model_fields[name]
        # Keep the field's metadata (its classification travels with it).
        fields[name] = (info.annotation, info)
    created: type[BaseModel] = create_model(
        f"{stored.__name__.removesuffix('Record')}{view.capitalize()}Read", __config__=_READ, **fields
    )
    return created


def render(record: BaseModel, view: str, safe_harbor: SafeHarbor | None = None) -> dict[str, Any]:
    """`record` as `view` may see it, JSON-ready. The researcher view needs the Safe Harbor transformer."""
    if view == RESEARCHER:
        if safe_harbor is None:
            raise ValueError("the researcher view needs a SafeHarbor transformer")
        return safe_harbor.deidentify(record, RESEARCHER)
    model = read_model(type(record), view)
    names = set(model.model_fields)
    subset = {name: getattr(record, name) for name in names}
    return model.model_validate(subset).model_dump(mode="json")
