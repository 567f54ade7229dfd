"""Keyed pseudonyms: deterministic per key, unlinkable across keys, fail closed without the key."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from shared.errors import DependencyUnavailable
from shared.pseudonym import KeyedPseudonymizer
from shared.schemas.events import DocumentReceived
from shared.secrets import LocalSecrets, Secret


class _Versioned:
    def __init__(self, value: str, version: str) -> None:
        self.secret = Secret("pseudonym-key", value, version)
        self.calls = 0

    def get(self, name: str) -> Secret:
        self.calls += 1
        assert name == "pseudonym-key"
        return self.secret


def test_same_input_and_key_give_the_same_token() -> None:
    p = KeyedPseudonymizer(_Versioned("k1", "0a1b"), "pseudonym-key")
    assert p.pseudonym("patient", "abc") == p.pseudonym("patient", "abc")
    assert p.pseudonym("patient", "abc") != p.pseudonym("patient", "abd")


def test_token_is_hmac_sha256_with_a_key_version_prefix() -> None:
    token = KeyedPseudonymizer(_Versioned("k1", "0a1b"), "pseudonym-key").pseudonym("patient", "abc")
    expected = hmac.new(b"k1", b"patient\x1fabc", hashlib.sha256).hexdigest()
    assert token == f"v0a1b:{expected}"
    assert re.fullmatch(DocumentReceived.model_fields["patient_token"].metadata[0].pattern, token)


def test_a_different_key_gives_an_unlinkable_token() -> None:
    a = KeyedPseudonymizer(_Versioned("key-one", "1"), "pseudonym-key").pseudonym("patient", "abc")
    b = KeyedPseudonymizer(_Versioned("key-two", "2"), "pseudonym-key").pseudonym("patient", "abc")
    assert a.split(":")[1] != b.split(":")[1]
    assert a.split(":")[0] == "v1" and b.split(":")[0] == "v2"


def test_kinds_are_separate_namespaces() -> None:
    p = KeyedPseudonymizer(_Versioned("k", "1"), "pseudonym-key")
    assert p.pseudonym("patient", "abc").split(":")[1] != p.pseudonym("document", "abc").split(":")[1]


def test_the_token_never_contains_the_input_or_the_key() -> None:
    p = KeyedPseudonymizer(_Versioned("super-secret-key", "1"), "pseudonym-key")
    token = p.pseudonym("patient", "MRN0042")
    assert "MRN0042" not in token and "super-secret-key" not in token


def test_missing_key_fails_closed() -> None:
    p = KeyedPseudonymizer(LocalSecrets({}), "pseudonym-key")
    with pytest.raises(DependencyUnavailable) as caught:
        p.pseudonym("patient", "abc")
    assert caught.value.status == 503


def test_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        KeyedPseudonymizer(_Versioned("k", "1"), "pseudonym-key").pseudonym("Patient Name", "x")
