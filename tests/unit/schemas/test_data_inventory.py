"""docs/data-inventory.md is generated from the models and must match them."""

from __future__ import annotations

from scripts import gen_data_inventory
from shared.schemas.registry import MODELS


def test_committed_inventory_is_current() -> None:
    committed = gen_data_inventory.OUTPUT.read_text(encoding="utf-8")
    assert committed == gen_data_inventory.render(), "stale: run python -m scripts.gen_data_inventory"
    assert gen_data_inventory.main(["--check"]) == 0


def test_every_field_of_every_model_is_listed() -> None:
    text = gen_data_inventory.render()
    for entry in MODELS:
        section = text.split(f"## `{entry.model.__name__}`", 1)[1].split("\n## ", 1)[0]
        for name in entry.model.model_fields:
            assert f"| `{name}` |" in section


def test_the_check_detects_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "data-inventory.md"
    stale.write_text(gen_data_inventory.render().replace("A_names", "not_phi"), encoding="utf-8")
    monkeypatch.setattr(gen_data_inventory, "OUTPUT", stale)
    assert gen_data_inventory.main(["--check"]) == 1
