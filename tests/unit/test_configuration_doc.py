"""Every setting `shared/config.py` reads is documented in docs/configuration.md."""

from __future__ import annotations

import re

from tests.conftest import ROOT

_READ = re.compile(r'r\.(?:opt|req|text|boolean|integer|guid|guid_list|csv|url)\(\s*"([A-Za-z0-9_]+)"')


def test_every_setting_read_at_start_up_is_documented() -> None:
    source = (ROOT / "shared" / "config.py").read_text()
    names = set(_READ.findall(source))
    assert len(names) > 30, "the pattern no longer matches how config.py reads settings"
    doc = (ROOT / "docs" / "configuration.md").read_text()
    undocumented = sorted(n for n in names if f"`{n}`" not in doc)
    assert not undocumented, f"settings missing from docs/configuration.md: {undocumented}"
