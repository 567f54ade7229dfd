"""The one scrubber: allow-list first, pattern net second, headers never, messages redacted by type."""

from __future__ import annotations

import pytest

from shared.scrub import (
    REDACTED,
    SAFE_ATTRIBUTE_KEYS,
    safe,
    safe_reason,
    safe_stacktrace,
    safe_status_description,
    scrub_attributes,
    scrub_headers,
    scrub_log_message,
    scrub_stacktrace_text,
    scrub_text,
    scrub_url,
)
from tests.security.phi_canaries import EVERYTHING, NAME, NOTE, SECRETS, SSN, find_canaries

PATTERNED = [
    ("ssn", "ssn 512-34-6789 on file", "512-34-6789"),
    ("ssn spaced", "ssn 512 34 6789", "512 34 6789"),
    ("mrn", "record MRN-00482913 opened", "00482913"),
    ("mrn colon", "MRN: 4471823", "4471823"),
    ("member id", "member XQH847362915", "XQH847362915"),
    ("long digits", "account 88812345", "88812345"),
    ("phone", "call (617) 555-0134", "555-0134"),
    ("phone intl", "call +1 617.555.0134", "555.0134"),
    ("email", "mail zebulon.q@example.org", "zebulon.q@example.org"),
    ("dob iso", "born 1961-02-14", "1961-02-14"),
    ("dob us", "born 02/14/1961", "02/14/1961"),
    ("dob short", "born 2/14/61", "2/14/61"),
    ("dob long", "born February 14, 1961", "February 14, 1961"),
    ("dob eu", "born 14 Feb 1961", "14 Feb 1961"),
    ("zip+4", "zip 01109-2231", "01109-2231"),
    ("ipv4", "from 198.51.100.77", "198.51.100.77"),
    ("ipv6", "from 2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
    ("ipv6 full", "from 2001:0db8:0000:0000:0000:ff00:0042:8329", "ff00:0042:8329"),
    ("street", "lives at 4417 Quillfeather Lane", "Quillfeather"),
    ("honorific", "seen by Dr. Ada Lovelace", "Lovelace"),
    ("name field", "name=Zebulon Quartermaine", "Quartermaine"),
    ("json name", '{"given": "Zebulon", "family": "Quartermaine"}', "Quartermaine"),
    ("patient field", "patient: Zebulon Quartermaine, ok", "Zebulon"),
    ("note field", "note='chest tightness'", "chest tightness"),
    ("bearer", "Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
    ("jwt", "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "eyJzdWIiOiJ4In0"),
    ("url query", "GET https://h.example/api/p?name=Zebulon Quartermaine&x=1", "Quartermaine"),
    ("function key header", "'x-functions-key': 'fkey-canary'", "fkey-canary"),
    ("apim header", "Ocp-Apim-Subscription-Key=apimkey", "apimkey"),
    ("principal header", "x-ms-client-principal: eyJjbGFpbXMi", "eyJjbGFpbXMi"),
    ("cookie", "Cookie: session=abc123", "session=abc123"),
]


@pytest.mark.parametrize(("label", "text", "secret"), PATTERNED, ids=[p[0] for p in PATTERNED])
def test_pattern_net_removes(label: str, text: str, secret: str) -> None:
    assert secret in text
    assert secret not in scrub_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "invocation completed in 12 ms",
        "route patients/{id} returned 404",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "retrying in 5 s (attempt 2 of 3)",
        "at 10:30:45 the queue drained",
    ],
)
def test_structural_text_survives(text: str) -> None:
    assert scrub_text(text) == text


def test_scrub_text_is_idempotent() -> None:
    once = scrub_text(EVERYTHING)
    assert scrub_text(once) == once


def test_url_loses_query_fragment_and_user_info() -> None:
    url = f"https://user:pw@api.example.org:8443/api/patients/{SSN}?name=Zebulon#frag"
    assert scrub_url(url) == f"https://api.example.org:8443/api/patients/{REDACTED}"


def test_allow_listed_keys_pass_others_are_redacted_headers_dropped() -> None:
    attributes = {
        "http.route": "patients/{id}",
        "http.response.status_code": 403,
        "faas.invocation_id": "abc",
        "patient.name": NAME,
        "custom.count": 12345678,
        "flag": True,
        "exception.type": "ValueError",
        "exception.message": EVERYTHING,
        "http.request.header.authorization": SECRETS["Authorization"],
        "http.request.header.x-functions-key": SECRETS["x-functions-key"],
        "url.full": f"https://h.example/p/{SSN}?ssn={SSN}",
        "url.query": f"ssn={SSN}",
        "audit.action": "R",
    }
    out = scrub_attributes(attributes)
    assert out == {
        "http.route": "patients/{id}",
        "http.response.status_code": 403,
        "faas.invocation_id": "abc",
        "patient.name": REDACTED,
        "custom.count": REDACTED,  # an unknown number can be an MRN
        "flag": True,
        "exception.type": "ValueError",
        "url.full": f"https://h.example/p/{REDACTED}",
        "audit.action": "R",
    }


def test_allow_list_excludes_keys_that_carry_free_text_or_identity() -> None:
    risky = {
        "exception.message",
        "exception.stacktrace",
        "url.full",
        "url.query",
        "url.path",
        "http.url",
        "http.target",
        "enduser.id",
        "client.address",
        "http.client_ip",
        "net.peer.ip",
        "user_agent.original",
        "http.request.header.authorization",
        "http.request.header.cookie",
        "db.statement",
        "db.query.text",
        "messaging.message.id",
        "log.record.original",
    }
    assert not (risky & SAFE_ATTRIBUTE_KEYS)


def test_log_message_redacts_string_args_by_type() -> None:
    assert scrub_log_message("patient %s note %s", (NAME, NOTE)) == f"patient {REDACTED} note {REDACTED}"
    assert scrub_log_message("swept %d rows in %.1f s", (12, 0.5)) == "swept 12 rows in 0.5 s"
    assert scrub_log_message("queue %s", (safe("document-intake"),)) == "queue document-intake"
    assert scrub_log_message("corr %s", ("4bf92f3577b34da6a3ce929d0e0e4736",)).endswith("0e4736")
    assert scrub_log_message("%(who)s", {"who": NAME}) == REDACTED
    assert scrub_log_message({"name": NAME}, None) == f"{REDACTED} (dict)"
    assert scrub_log_message("bad %d format", ("x",)) == f"bad %d format {REDACTED}"
    assert scrub_log_message("%s", (12345678,)) == REDACTED  # numbers still meet the pattern net


def test_headers_helper_drops_every_sensitive_header() -> None:
    headers = {**SECRETS, "Content-Type": "application/json", "X-Note": f"ssn {SSN}"}
    out = scrub_headers(headers)
    assert set(out) == {"Content-Type", "X-Note"}
    assert SSN not in out["X-Note"]


def test_stacktraces_keep_frames_only() -> None:
    import traceback

    try:
        raise ValueError(EVERYTHING)
    except ValueError as exc:
        formatted = "".join(traceback.format_exception(exc))
        built = safe_stacktrace(type(exc), exc.__traceback__)
    for stack in (scrub_stacktrace_text(formatted), built):
        assert "test_scrub.py" in stack
        assert not find_canaries([stack])
    assert built.endswith("ValueError")


def test_status_description_keeps_the_exception_type_only() -> None:
    assert safe_status_description(f"KeyError: {EVERYTHING}") == "KeyError"
    assert safe_status_description(f"failed for ssn {SSN}") == f"failed for ssn {REDACTED}"
    assert safe_status_description(None) is None


def test_safe_reason_accepts_codes_only() -> None:
    assert safe_reason("schema_validation_failed") == "schema_validation_failed"
    assert safe_reason(f"bad patient {NAME}") == "invalid_message"
    assert safe_reason(SSN) == "invalid_message"
