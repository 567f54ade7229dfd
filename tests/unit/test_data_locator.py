"""The data-layer service locator builds one of each per process from the settings."""

from __future__ import annotations

from collections.abc import Callable

from shared import data
from shared.pseudonym import KeyedPseudonymizer
from shared.schemas.classification import DEID_PATIENT_KIND
from shared.secrets import LocalSecrets
from tests.fixtures.data import patient_create


def test_locator_builds_a_working_embedded_stack(app_env: Callable[..., None]) -> None:
    app_env(LOCAL_SECRET_PSEUDONYM_KEY="locator-test-key", RESTRICTED_ZIP3_CENSUS="2000")
    assert isinstance(data.get_secrets(), LocalSecrets)
    assert data.get_repositories() is data.get_repositories()
    repos = data.get_repositories()
    created = repos.patients.create(patient_create(postal_code="06390"))
    assert repos.patients.get(created.id) == created

    pseudonymizer = data.get_pseudonymizer()
    assert isinstance(pseudonymizer, KeyedPseudonymizer)
    token = pseudonymizer.pseudonym(DEID_PATIENT_KIND, created.id)
    assert token.startswith("vlocal:")
    out = data.get_safe_harbor().deidentify(created)
    assert out["patient_token"] == token
    # Unlinkable to the audit trail's pseudonym for the same patient.
    assert out["patient_token"] != pseudonymizer.pseudonym("patient", created.id)
    assert out["zip3"] == "000"  # 063 is restricted under the 2000 census the settings chose


def test_a_new_key_gives_new_tokens_after_a_reset(app_env: Callable[..., None]) -> None:
    app_env(LOCAL_SECRET_PSEUDONYM_KEY="key-one")
    first = data.get_pseudonymizer().pseudonym("patient", "p-1")
    app_env(LOCAL_SECRET_PSEUDONYM_KEY="key-two")
    assert data.get_pseudonymizer().pseudonym("patient", "p-1") != first
