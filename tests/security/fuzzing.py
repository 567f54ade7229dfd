"""Shared hypothesis strategies and oracles for the HTTP and trigger fuzz tests.

Strategies mix valid-shaped bodies with mutations: wrong types, huge strings, unicode, nested junk,
non-JSON bytes, and values from the PHI canary corpus. Every strategy returns the input together with
the strings it planted (`Fuzzed.planted`), so the oracle can check none of them is echoed back.

The echo oracle ignores planted strings that are part of the app's fixed vocabulary (field names,
error codes and titles): a fuzzed value that happens to read "validation" is not an echo when the
response says `validation_failed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import azure.functions as func
import pydantic_core
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from shared import errors as app_errors
from shared.schemas.lab_results import LabResultIn
from shared.schemas.patients import PatientCreate
from tests.security.phi_canaries import CANARIES, EVERYTHING

EXAMPLES = 1000
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ examples on disk: they would hold canary-laden inputs
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
MIN_ECHO_LENGTH = 6
_WORD = re.compile(r"[^\s\"'{}\[\],:;<>=/\\]{6,}")


def _vocabulary() -> str:
    words: set[str] = set()
    for model in (PatientCreate, LabResultIn):
        words.update(model.model_fields)
    for obj in vars(app_errors).values():
        if isinstance(obj, type) and issubclass(obj, app_errors.AppError):
            words.update({obj.code, obj.title})
    words.update(get_args(pydantic_core.core_schema.ErrorType))
    words.update(
        {
            "urn:problem:", "correlationId", "application/problem+json", "application/json", "no-store",
            "nosniff", 'Bearer error="invalid_token"', 'Bearer error="insufficient_scope"', "Retry-After",
            "X-Correlation-Id", "X-Content-Type-Options", "Cache-Control", "Location", "/api/patients/",
            "/documents/", "documentId", "received", "status", "malformed_json", "constraint_violation",
            "unsupported_charset", "content_does_not_match_type", "empty_document", "dependency_unavailable",
            "invalid_message",
        }
    )  # fmt: skip
    return "\n".join(sorted(words))


VOCABULARY = _vocabulary()


@dataclass
class Fuzzed:
    """One generated input and the strings planted in it (checked for echoes)."""

    body: bytes
    planted: set[str] = field(default_factory=set)
    description: str = ""


def strings_in(value: Any) -> set[str]:
    """Every string (keys and values) of length >= MIN_ECHO_LENGTH in a JSON-like value."""
    found: set[str] = set()
    if isinstance(value, str):
        if len(value) >= MIN_ECHO_LENGTH:
            found.add(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            found |= strings_in(k) | strings_in(v)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= strings_in(item)
    return found


def words_in(raw: bytes) -> set[str]:
    """Printable runs of >= 6 characters in arbitrary bytes (what an echo of raw input would show)."""
    return set(_WORD.findall(raw.decode("utf-8", errors="ignore")))


def assert_no_echo(
    planted: Iterable[str], response: func.HttpResponse, *, allowed: Iterable[str] = ()
) -> None:
    """No planted string of length >= 6 appears in the response body or any header (name or value)."""
    texts = [response.get_body().decode("utf-8", errors="replace")]
    texts += [f"{k}: {v}" for k, v in response.headers.items()]
    texts.append(response.mimetype or "")
    haystack = "\n".join(texts)
    # JSON-escaped forms too: json.dumps(ensure_ascii=True) would write non-ASCII input as \uXXXX.
    skip = set(allowed)
    echoed = [
        s
        for s in planted
        if len(s) >= MIN_ECHO_LENGTH
        and s not in skip
        and s not in VOCABULARY
        and (s in haystack or json.dumps(s)[1:-1] in haystack)
    ]
    assert not echoed, f"input echoed in the response: {echoed[:5]!r} (status {response.status_code})"


def assert_not_server_error(response: func.HttpResponse) -> None:
    """Never a 5xx, except the documented dependency-outage 503 (problem+json, dependency_unavailable)."""
    if response.status_code < 500:
        return
    body = response.get_body()
    if response.status_code == 503 and json.loads(body).get("code") == "dependency_unavailable":
        return
    raise AssertionError(f"server error {response.status_code}: {body[:300]!r}")


def assert_problem_shape(response: func.HttpResponse) -> None:
    """An error body is problem+json with fixed keys only: free text from the input has nowhere to go."""
    if response.status_code < 400:
        return
    assert response.mimetype == "application/problem+json"
    problem = json.loads(response.get_body())
    assert set(problem) <= {"type", "title", "status", "code", "correlationId", "errors"}, problem.keys()
    assert re.fullmatch(r"[a-z_]+", problem["code"]), problem["code"]
    for item in problem.get("errors", []):
        assert set(item) <= {"path", "code"}
        assert re.fullmatch(r"[a-z_]+", item["code"])
        assert re.fullmatch(r"[A-Za-z0-9_.*$]*", item["path"]), "error path carries free text"


# ------------------------------------------------------------------------------------------ strategies
CANARY_VALUES = [c.value for c in CANARIES] + [EVERYTHING]
canary_text = st.sampled_from(CANARY_VALUES)
huge_text = st.builds(lambda c, n: c * n, st.sampled_from(["A", "é", "\U0001f600", "Zebulon ", "\x00"]),
                      st.integers(1_000, 80_000))  # fmt: skip
any_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=6, max_size=40),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=45),
    canary_text,
    huge_text,
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=15) | canary_text, kids, max_size=5)
    ),
    max_leaves=15,
)
junk_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [b"", b"{", b"[]", b"null", b"\xff\xfe\x00", b'{"a":1,}', b"NaN", b"1e99999", b'"x"' * 3]
    ),
    canary_text.map(str.encode),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(100, 5000)),  # deep nesting
    st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, st.integers(100, 3000)),
)


@st.composite
def mutated_object(draw: st.DrawFn, valid: Mapping[str, Any]) -> dict[str, Any]:
    """A valid body with 0..4 mutations: wrong types, junk, canaries, dropped or extra keys."""
    body = dict(valid)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "canary", "drop", "extra", "type"]))
        keys = sorted(body) or ["x"]
        key = draw(st.sampled_from(keys))
        if op == "set":
            body[key] = draw(json_value)
        elif op == "canary":
            body[key] = draw(canary_text)
        elif op == "drop":
            body.pop(key, None)
        elif op == "extra":
            body[draw(st.text(min_size=1, max_size=20) | canary_text)] = draw(json_value)
        else:
            body[key] = draw(st.sampled_from([[body.get(key)], {"v": body.get(key)}, 1, 1.5, True, None]))
    return body


@st.composite
def json_bodies(draw: st.DrawFn, valid: Mapping[str, Any]) -> Fuzzed:
    """Bytes for a JSON endpoint or message: mostly mutated valid shapes, then junk JSON and non-JSON."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "valid", "json", "bytes", "truncated"]))
    if kind in ("mutated", "valid"):
        value: Any = dict(valid) if kind == "valid" else draw(mutated_object(valid))
        raw = json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
        return Fuzzed(raw, strings_in(value), kind)
    if kind == "json":
        value = draw(json_value)
        return Fuzzed(json.dumps(value).encode(), strings_in(value), kind)
    if kind == "truncated":
        value = draw(mutated_object(valid))
        raw = json.dumps(value).encode()
        cut = draw(st.integers(0, max(0, len(raw) - 1)))
        return Fuzzed(raw[:cut], strings_in(value), kind)
    raw = draw(junk_bytes)
    return Fuzzed(raw, words_in(raw), kind)
