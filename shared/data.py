"""Service locator for the data layer: one of each per process, built from the settings.

Handlers call these; tests rebuild them through `tests.conftest.reset_process_state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared.blobs import DocumentStore
from shared.config import get_settings
from shared.db.connection import Database, build_database
from shared.db.schema import create_schema
from shared.deid import SafeHarbor
from shared.identity import get_credential
from shared.messaging import get_event_publisher
from shared.pseudonym import KeyedPseudonymizer
from shared.repositories.documents import DocumentRepository
from shared.repositories.lab_results import LabResultRepository
from shared.repositories.patients import PatientRepository
from shared.secrets import get_secrets
from shared.storage import get_storage_clients

__all__ = [
    "Repositories",
    "get_database",
    "get_document_store",
    "get_event_publisher",
    "get_pseudonymizer",
    "get_repositories",
    "get_safe_harbor",
    "get_secrets",
]


@dataclass(frozen=True)
class Repositories:
    patients: PatientRepository
    documents: DocumentRepository
    lab_results: LabResultRepository


@lru_cache(maxsize=1)
def get_pseudonymizer() -> KeyedPseudonymizer:
    return KeyedPseudonymizer(get_secrets(), get_settings().secrets.pseudonym_key_secret_name)


@lru_cache(maxsize=1)
def get_safe_harbor() -> SafeHarbor:
    return SafeHarbor(get_pseudonymizer(), census=get_settings().data.restricted_zip3_census)


@lru_cache(maxsize=1)
def get_database() -> Database:
    settings = get_settings()
    db = build_database(settings, get_credential)
    if db.dialect == "sqlite":
        create_schema(db)  # the embedded local database creates itself; Azure SQL is migrated by deployment
    return db


@lru_cache(maxsize=1)
def get_repositories() -> Repositories:
    db = get_database()
    return Repositories(PatientRepository(db), DocumentRepository(db), LabResultRepository(db))


@lru_cache(maxsize=1)
def get_document_store() -> DocumentStore:
    settings = get_settings()
    store = DocumentStore(
        get_storage_clients().blob,
        settings.storage.phi_container,
        max_bytes=settings.storage.max_document_bytes,
        encryption_scope=settings.storage.encryption_scope,
    )
    if settings.storage.connection_string is not None:
        store.ensure_container()  # Azurite only; infra creates the container in Azure
    return store
