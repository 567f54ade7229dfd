"""Typed, validated settings, read once at start-up.

Every setting the app reads is named here and nowhere else. Names match what `infra/` writes into the
Function App's app settings, so wiring a new environment is a matter of setting these keys.

Start-up fails with `SettingsError` naming the offending *setting*, never its value: a value may be a
secret, or (through a mistaken Key Vault reference) something worse.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import urlparse

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
DEVELOPMENT = "Development"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOCAL_SECRET_PREFIX = "LOCAL_SECRET_"  # noqa: S105 - a setting-name prefix, not a secret
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SettingsError(RuntimeError):
    """A setting is missing or invalid. The message names the setting and never carries its value."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"Invalid configuration: setting '{setting}' {problem}.")


@dataclass(frozen=True)
class IdentitySettings:
    tenant_id: str
    audience: str
    app_id_uri: str | None
    authority: str
    allowed_tenants: tuple[str, ...]
    allowed_client_apps: tuple[str, ...]
    allow_guests: bool
    leeway_seconds: int
    jwks_cache_seconds: int
    jwks_refresh_min_interval_seconds: int
    http_timeout_seconds: float


@dataclass(frozen=True)
class StorageSettings:
    """PHI storage account (documents, audit archive, intake queue); connection name `PhiStorage`."""

    connection_string: str | None
    blob_service_uri: str | None
    queue_service_uri: str | None
    client_id: str | None
    phi_container: str
    audit_container: str
    document_intake_queue: str
    encryption_scope: str | None
    max_document_bytes: int


@dataclass(frozen=True)
class ServiceBusSettings:
    connection_string: str | None
    fully_qualified_namespace: str | None
    events_queue: str
    lab_results_queue: str


@dataclass(frozen=True)
class SqlSettings:
    server: str | None
    database: str | None
    always_encrypted: bool
    driver: str
    sqlite_path: str

    @property
    def use_embedded(self) -> bool:
        return self.server is None


@dataclass(frozen=True)
class SecretsSettings:
    key_vault_uri: str | None
    cache_ttl_seconds: int
    pseudonym_key_secret_name: str
    local_secrets: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class TelemetrySettings:
    app_insights_connection_string: str | None = field(repr=False)
    service_name: str
    trust_forwarded_for: bool
    sdk_log_level: str


@dataclass(frozen=True)
class DataPolicySettings:
    retention_days: int
    retention_batch_size: int
    restricted_zip3_census: Literal["2000", "2010"]
    max_request_bytes: int


@dataclass(frozen=True)
class Settings:
    environment: str
    client_id: str | None
    identity: IdentitySettings
    storage: StorageSettings
    service_bus: ServiceBusSettings
    sql: SqlSettings
    secrets: SecretsSettings
    telemetry: TelemetrySettings
    data: DataPolicySettings

    @property
    def is_development(self) -> bool:
        return self.environment == DEVELOPMENT


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def opt(self, name: str) -> str | None:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return None
        value = raw.strip()
        if value.startswith(KEY_VAULT_REFERENCE):
            raise SettingsError(
                name,
                "is an unresolved Key Vault reference (check the app's identity "
                "has 'Key Vault Secrets User' and the reference syntax)",
            )
        return value

    def req(self, name: str) -> str:
        value = self.opt(name)
        if value is None:
            raise SettingsError(name, "is required but not set")
        return value

    def text(self, name: str, default: str) -> str:
        return self.opt(name) or default

    def boolean(self, name: str, default: bool) -> bool:
        value = self.opt(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(name, "must be true or false")

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.opt(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(name, "must be an integer") from None
        if not lo <= number <= hi:
            raise SettingsError(name, f"must be between {lo} and {hi}")
        return number

    def guid(self, name: str) -> str:
        value = self.req(name)
        if not GUID_RE.match(value):
            raise SettingsError(name, "must be a GUID")
        return value.lower()

    def guid_list(self, name: str) -> tuple[str, ...]:
        items = self.csv(name)
        for item in items:
            if not GUID_RE.match(item):
                raise SettingsError(name, "must be a comma-separated list of GUIDs")
        return tuple(i.lower() for i in items)

    def csv(self, name: str) -> tuple[str, ...]:
        value = self.opt(name)
        if value is None:
            return ()
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def url(self, name: str, value: str | None = None) -> str | None:
        value = value if value is not None else self.opt(name)
        if value is None:
            return None
        check_endpoint_url(name, value)
        return value.rstrip("/")


def check_endpoint_url(name: str, value: str) -> None:
    """https:// everywhere; plain http:// only for loopback hosts (emulators and tests)."""
    parsed = urlparse(value)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS:
        return
    raise SettingsError(name, "must be an https:// URL (http:// is allowed only for loopback hosts)")


def _refuse_unresolved_references(environ: Mapping[str, str]) -> None:
    # A reference the platform could not resolve stays literal. Any such setting, even one this app
    # does not read, means the deployment is broken; refuse rather than run half-configured.
    for name, value in environ.items():
        if value.strip().startswith(KEY_VAULT_REFERENCE):
            raise SettingsError(name, "is an unresolved Key Vault reference")


def _has_account_key(connection_string: str) -> bool:
    lowered = connection_string.lower()
    return "accountkey=" in lowered or "sharedaccesskey=" in lowered or "sharedaccesssignature=" in lowered


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    _refuse_unresolved_references(env)
    r = _Reader(env)

    environment = r.text("AZURE_FUNCTIONS_ENVIRONMENT", "Production")
    development = environment == DEVELOPMENT

    enable_worker_telemetry = r.opt("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")
    if enable_worker_telemetry is not None and enable_worker_telemetry.lower() in _TRUE:
        raise SettingsError(
            "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
            "must not be set: the worker would export telemetry without PHI redaction "
            "(this app configures OpenTelemetry itself)",
        )

    tenant_id = r.guid("OIDC_TENANT_ID")
    authority = r.url("OIDC_AUTHORITY") or f"https://login.microsoftonline.com/{tenant_id}/v2.0"
    app_id_uri = r.opt("OIDC_APP_ID_URI")
    if app_id_uri is not None and not app_id_uri.startswith("api://"):
        raise SettingsError("OIDC_APP_ID_URI", "must start with api://")
    identity = IdentitySettings(
        tenant_id=tenant_id,
        audience=r.req("OIDC_AUDIENCE"),
        app_id_uri=app_id_uri,
        authority=authority,
        allowed_tenants=r.guid_list("OIDC_ALLOWED_TENANTS"),
        allowed_client_apps=r.csv("OIDC_ALLOWED_CLIENT_APPS"),
        allow_guests=r.boolean("OIDC_ALLOW_GUESTS", False),
        leeway_seconds=r.integer("OIDC_LEEWAY_SECONDS", 60, 0, 300),
        jwks_cache_seconds=r.integer("OIDC_JWKS_CACHE_SECONDS", 12 * 3600, 12 * 3600, 24 * 3600),
        jwks_refresh_min_interval_seconds=r.integer("OIDC_JWKS_REFRESH_MIN_INTERVAL_SECONDS", 300, 300, 3600),
        http_timeout_seconds=float(r.integer("OIDC_HTTP_TIMEOUT_SECONDS", 5, 1, 30)),
    )

    client_id = r.opt("AZURE_CLIENT_ID")
    storage_conn = r.opt("PhiStorage")
    blob_uri = r.url("PhiStorage__blobServiceUri")
    queue_uri = r.url("PhiStorage__queueServiceUri")
    if storage_conn is None and (blob_uri is None or queue_uri is None):
        missing = "PhiStorage__blobServiceUri" if blob_uri is None else "PhiStorage__queueServiceUri"
        raise SettingsError(missing, "is required (identity-based storage connection)")
    if storage_conn is not None and not development:
        raise SettingsError(
            "PhiStorage",
            "is a connection string, allowed only for local emulators "
            "(AZURE_FUNCTIONS_ENVIRONMENT=Development); use PhiStorage__blobServiceUri",
        )
    storage = StorageSettings(
        connection_string=storage_conn,
        blob_service_uri=blob_uri,
        queue_service_uri=queue_uri,
        client_id=r.opt("PhiStorage__clientId") or client_id,
        phi_container=r.text("PHI_CONTAINER", "phi-documents"),
        audit_container=r.text("AUDIT_CONTAINER", "audit"),
        document_intake_queue=r.text("DOCUMENT_INTAKE_QUEUE", "document-intake"),
        encryption_scope=r.opt("PHI_ENCRYPTION_SCOPE"),
        max_document_bytes=r.integer("DOCUMENT_MAX_BYTES", 10 * 1024 * 1024, 1024, 100 * 1024 * 1024),
    )

    sb_conn = r.opt("ServiceBusConnection")
    sb_fqns = r.opt("ServiceBusConnection__fullyQualifiedNamespace")
    if sb_conn is None and sb_fqns is None:
        raise SettingsError("ServiceBusConnection__fullyQualifiedNamespace", "is required")
    if sb_conn is not None and not development:
        raise SettingsError(
            "ServiceBusConnection",
            "is a connection string, allowed only for the local "
            "emulator; use ServiceBusConnection__fullyQualifiedNamespace",
        )
    service_bus = ServiceBusSettings(
        connection_string=sb_conn,
        fully_qualified_namespace=sb_fqns,
        events_queue=r.text("SERVICE_BUS_EVENTS_QUEUE", "document-events"),
        lab_results_queue=r.text("SERVICE_BUS_LAB_RESULTS_QUEUE", "lab-results"),
    )

    sql_server = r.opt("SQL_SERVER")
    sql = SqlSettings(
        server=sql_server,
        database=r.opt("SQL_DATABASE"),
        always_encrypted=r.boolean("SQL_ALWAYS_ENCRYPTED", False),
        driver=r.text("SQL_ODBC_DRIVER", "ODBC Driver 18 for SQL Server"),
        sqlite_path=r.text("LOCAL_SQLITE_PATH", ".local/phi.sqlite3"),
    )
    if sql_server is not None and sql.database is None:
        raise SettingsError("SQL_DATABASE", "is required when SQL_SERVER is set")

    key_vault_uri = r.url("KEY_VAULT_URI")
    local_secrets: dict[str, str] = {}
    if development:
        for name in env:
            if name.startswith(LOCAL_SECRET_PREFIX):
                value = r.opt(name)
                if value is not None:
                    secret_name = name[len(LOCAL_SECRET_PREFIX) :].lower().replace("_", "-")
                    local_secrets[secret_name] = value
    secrets = SecretsSettings(
        key_vault_uri=key_vault_uri,
        cache_ttl_seconds=r.integer("KEY_VAULT_CACHE_TTL_SECONDS", 900, 30, 86400),
        pseudonym_key_secret_name=r.text("PSEUDONYM_KEY_SECRET_NAME", "pseudonym-key"),
        local_secrets=local_secrets,
    )

    app_insights = r.opt("APPLICATIONINSIGHTS_CONNECTION_STRING")
    telemetry = TelemetrySettings(
        app_insights_connection_string=app_insights,
        service_name=r.text("OTEL_SERVICE_NAME", "hipaa-functions"),
        trust_forwarded_for=r.boolean("TRUST_FORWARDED_FOR", False),
        sdk_log_level=r.text("AZURE_SDK_LOG_LEVEL", "WARNING").upper(),
    )

    census = r.text("RESTRICTED_ZIP3_CENSUS", "2010")
    if census not in ("2000", "2010"):
        raise SettingsError("RESTRICTED_ZIP3_CENSUS", "must be 2000 or 2010")
    data = DataPolicySettings(
        retention_days=r.integer("PHI_RETENTION_DAYS", 2555, 1, 36500),
        retention_batch_size=r.integer("RETENTION_BATCH_SIZE", 100, 1, 5000),
        restricted_zip3_census="2000" if census == "2000" else "2010",
        max_request_bytes=r.integer("MAX_REQUEST_BYTES", 64 * 1024, 1024, 1024 * 1024),
    )

    if not development:
        # Outside local development every dependency is reached by managed identity.
        for name, value in (
            ("AZURE_CLIENT_ID", client_id),
            ("KEY_VAULT_URI", key_vault_uri),
            ("SQL_SERVER", sql_server),
            ("APPLICATIONINSIGHTS_CONNECTION_STRING", app_insights),
        ):
            if value is None:
                raise SettingsError(name, f"is required when AZURE_FUNCTIONS_ENVIRONMENT is '{environment}'")
    elif key_vault_uri is None and secrets.pseudonym_key_secret_name not in local_secrets:
        raise SettingsError(
            LOCAL_SECRET_PREFIX + secrets.pseudonym_key_secret_name.upper().replace("-", "_"),
            "is required in Development when KEY_VAULT_URI is not set",
        )

    return Settings(
        environment=environment,
        client_id=client_id,
        identity=identity,
        storage=storage,
        service_bus=service_bus,
        sql=sql,
        secrets=secrets,
        telemetry=telemetry,
        data=data,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests that change the environment call `get_settings.cache_clear()`."""
    return load_settings()
