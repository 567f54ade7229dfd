"""Blob and Queue clients for the PHI storage account (connection name `PhiStorage`).

In Azure the clients use the service URIs and the managed identity (`PhiStorage__blobServiceUri`,
`PhiStorage__queueServiceUri`, `PhiStorage__credential=managedidentity`, `PhiStorage__clientId`), the
same settings the Functions host reads for the queue trigger. A connection string is accepted only for
Azurite in Development (enforced in `shared.config`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from azure.core.credentials import TokenCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.config import StorageSettings, get_settings
from shared.identity import get_credential

# The Functions queue trigger expects base64 bodies (host.json `messageEncoding: base64`).
_QUEUE_POLICIES: dict[str, Any] = {
    "message_encode_policy": TextBase64EncodePolicy(),
    "message_decode_policy": TextBase64DecodePolicy(),
}
# Keep SDK retries short and bounded: callers turn a dependency outage into a 503 rather than hang.
# The storage SDK's default back-off (15 s, then 15 + 3^n s, +-3 s jitter) would hold a request ~40 s
# before the 503; this one waits 2.5 s then 4.5 s (each +-1 s), so an outage is a 503 within ~8 s.
_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "initial_backoff": 0.5,
    "increment_base": 2,
    "random_jitter_range": 1,
    "connection_timeout": 5,
    "read_timeout": 30,
}


@dataclass(frozen=True)
class StorageClients:
    blob: BlobServiceClient
    queue: QueueServiceClient

    def queue_client(self, name: str) -> QueueClient:
        return self.queue.get_queue_client(name, **_QUEUE_POLICIES)


def build_storage_clients(
    storage: StorageSettings, credential_factory: Callable[[], TokenCredential] = get_credential
) -> StorageClients:
    if storage.connection_string is not None:
        return StorageClients(
            blob=BlobServiceClient.from_connection_string(storage.connection_string, **_CLIENT_OPTIONS),
            queue=QueueServiceClient.from_connection_string(
                storage.connection_string, **_QUEUE_POLICIES, **_CLIENT_OPTIONS
            ),
        )
    if storage.blob_service_uri is None or storage.queue_service_uri is None:
        raise ValueError("identity-based storage needs both service URIs")  # load_settings enforces this
    credential = credential_factory()
    return StorageClients(
        blob=BlobServiceClient(storage.blob_service_uri, credential=credential, **_CLIENT_OPTIONS),
        queue=QueueServiceClient(
            storage.queue_service_uri, credential=credential, **_QUEUE_POLICIES, **_CLIENT_OPTIONS
        ),
    )


@lru_cache(maxsize=1)
def get_storage_clients() -> StorageClients:
    return build_storage_clients(get_settings().storage)
