from __future__ import annotations

import pytest

from shared.config import SettingsError, load_settings
from tests.conftest import BASE_TEST_ENV

SECRET_LOOKING_VALUE = "s3cr3t-value-that-must-never-appear"

AZURE_ENV = {
    "AZURE_FUNCTIONS_ENVIRONMENT": "Production",
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "OIDC_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
    "OIDC_AUDIENCE": "00000000-0000-0000-0000-0000000000bb",
    "PhiStorage__blobServiceUri": "https://stphi.blob.core.windows.net",
    "PhiStorage__queueServiceUri": "https://stphi.queue.core.windows.net",
    "PhiStorage__credential": "managedidentity",
    "ServiceBusConnection__fullyQualifiedNamespace": "sb-phi.servicebus.windows.net",
    "KEY_VAULT_URI": "https://kv-phi.vault.azure.net",
    "SQL_SERVER": "sql-phi.database.windows.net",
    "SQL_DATABASE": "phi",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000001",
}


def test_development_settings_load() -> None:
    settings = load_settings(BASE_TEST_ENV)
    assert settings.is_development
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"
    assert settings.identity.authority.startswith("https://login.microsoftonline.com/")
    assert settings.identity.leeway_seconds == 60


def test_azure_settings_are_identity_based() -> None:
    settings = load_settings(AZURE_ENV)
    assert not settings.is_development
    assert settings.storage.connection_string is None
    assert settings.storage.client_id == AZURE_ENV["AZURE_CLIENT_ID"]
    assert settings.secrets.local_secrets == {}


@pytest.mark.parametrize(
    "missing",
    [
        "OIDC_TENANT_ID",
        "OIDC_AUDIENCE",
        "AZURE_CLIENT_ID",
        "KEY_VAULT_URI",
        "SQL_SERVER",
        "PhiStorage__blobServiceUri",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ],
)
def test_missing_required_setting_is_named(missing: str) -> None:
    env = {k: v for k, v in AZURE_ENV.items() if k != missing}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert err.value.setting == missing
    assert missing in str(err.value)


@pytest.mark.parametrize("name", ["OIDC_AUDIENCE", "SQL_DATABASE", "SOME_UNRELATED_SETTING"])
def test_unresolved_key_vault_reference_is_refused_without_echoing_it(name: str) -> None:
    reference = f"@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/{SECRET_LOOKING_VALUE})"
    with pytest.raises(SettingsError) as err:
        load_settings({**AZURE_ENV, name: reference})
    assert name in str(err.value)
    assert SECRET_LOOKING_VALUE not in str(err.value)
    assert "KeyVault(" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PhiStorage", f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={SECRET_LOOKING_VALUE}"),
        (
            "ServiceBusConnection",
            f"Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey={SECRET_LOOKING_VALUE}",
        ),
    ],
)
def test_connection_strings_are_refused_outside_development(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**AZURE_ENV, name: value})
    assert err.value.setting == name
    assert SECRET_LOOKING_VALUE not in str(err.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OIDC_TENANT_ID", "not-a-guid"),
        ("OIDC_AUTHORITY", "http://login.example.com/tenant/v2.0"),
        ("OIDC_LEEWAY_SECONDS", "9999"),
        ("OIDC_JWKS_CACHE_SECONDS", "60"),
        ("OIDC_ALLOW_GUESTS", "maybe"),
        ("KEY_VAULT_URI", "http://kv.vault.azure.net"),
        ("RESTRICTED_ZIP3_CENSUS", "1990"),
        ("OIDC_APP_ID_URI", "https://not-an-app-id-uri"),
    ],
)
def test_invalid_values_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**AZURE_ENV, name: value})
    assert err.value.setting == name
    assert value not in str(err.value)


def test_loopback_http_authority_is_allowed_for_tests() -> None:
    settings = load_settings({**BASE_TEST_ENV, "OIDC_AUTHORITY": "http://127.0.0.1:8123/tenant/v2.0"})
    assert settings.identity.authority == "http://127.0.0.1:8123/tenant/v2.0"


def test_worker_telemetry_flag_is_refused() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**BASE_TEST_ENV, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"})
    assert err.value.setting == "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"


def test_local_secrets_only_in_development() -> None:
    dev = load_settings(BASE_TEST_ENV)
    assert "pseudonym-key" in dev.secrets.local_secrets
    prod = load_settings({**AZURE_ENV, "LOCAL_SECRET_PSEUDONYM_KEY": SECRET_LOOKING_VALUE})
    assert prod.secrets.local_secrets == {}


def test_development_without_key_vault_needs_a_local_pseudonym_key() -> None:
    env = {k: v for k, v in BASE_TEST_ENV.items() if k != "LOCAL_SECRET_PSEUDONYM_KEY"}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert err.value.setting == "LOCAL_SECRET_PSEUDONYM_KEY"


def test_settings_repr_hides_secret_values() -> None:
    settings = load_settings(BASE_TEST_ENV)
    assert BASE_TEST_ENV["LOCAL_SECRET_PSEUDONYM_KEY"] not in repr(settings)
