"""`make demo` (`python -m scripts.demo`) runs the whole clinical scenario in a clean process and passes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from scripts.demo import find_canaries
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end_and_reports_no_phi_in_telemetry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"Telemetry: (\d+) envelopes \(([^)]*)\) captured, (\d+) canary hits", result.stdout)
    assert summary, result.stdout[-2000:]
    assert int(summary.group(1)) > 0 and int(summary.group(3)) == 0
    assert {"Request", "Event"} <= set(summary.group(2).split(", "))
    assert "Demo passed" in result.stdout and "FAIL" not in result.stdout
    # The audit trail is printed: one line per record, with pseudonyms and never a raw id.
    audit_lines = [line for line in result.stdout.splitlines() if re.match(r"\s+\d{4}-\d\d-\d\dT", line)]
    assert len(audit_lines) >= 10
    assert any("vlocal:" in line for line in audit_lines)


def test_the_demo_canary_search_finds_every_form() -> None:
    """The demo's own leak check must be able to fail: raw, URL-encoded and JSON-escaped values."""
    assert find_canaries([b"name=Featherstonehaugh"]) == ["Featherstonehaugh"]
    assert find_canaries([b"addr=77%20Larkspur%20Crescent"]) == ["77 Larkspur Crescent", "Larkspur"]
    assert find_canaries([b'{"mrn":"DEMO4417290"}']) == ["DEMO4417290"]
    assert find_canaries([b"nothing to see"]) == []
