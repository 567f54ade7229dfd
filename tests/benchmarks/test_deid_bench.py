"""Researcher (Safe Harbor) rendering vs a bare `model_dump(mode="json")` of the same record.

The ratio is the cost of de-identification (classification-driven rules, HMAC pseudonym, validation
of the output model) over simply serialising the stored record. Run with `make bench`.
"""

from __future__ import annotations

import timeit
from typing import Any

from shared.deid import SafeHarbor
from shared.schemas.views import render
from tests.fixtures.data import FIXED_NOW, FakePseudonymizer, patient_record

HARBOR = SafeHarbor(FakePseudonymizer(), today=lambda: FIXED_NOW.date())
RECORD = patient_record()


def test_bench_researcher_view(benchmark: Any) -> None:
    out = benchmark(render, RECORD, "researcher", HARBOR)
    assert "given_name" not in out and out["patient_token"]


def test_bench_clinician_view(benchmark: Any) -> None:
    out = benchmark(render, RECORD, "clinician")
    assert out["given_name"] == RECORD.given_name


def test_bench_bare_model_dump(benchmark: Any) -> None:
    out = benchmark(RECORD.model_dump, mode="json")
    assert out["id"] == RECORD.id


def test_ratio_is_reported(capsys: Any) -> None:
    """Prints the figures; asserts no timing (that would flake)."""
    n, r = 300, 3
    bare = min(timeit.repeat(lambda: RECORD.model_dump(mode="json"), number=n, repeat=r)) / n
    researcher = min(timeit.repeat(lambda: render(RECORD, "researcher", HARBOR), number=n, repeat=r)) / n
    clinician = min(timeit.repeat(lambda: render(RECORD, "clinician"), number=n, repeat=r)) / n
    with capsys.disabled():
        print(
            f"\nviews: bare model_dump {bare * 1e6:.1f} us, clinician {clinician * 1e6:.1f} us "
            f"({clinician / bare:.1f}x), researcher {researcher * 1e6:.1f} us ({researcher / bare:.1f}x)"
        )
    assert bare > 0 and researcher > 0
