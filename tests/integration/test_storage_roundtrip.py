"""Real Azurite round-trip through the storage client factory the app uses."""

from __future__ import annotations

import base64
import uuid

import pytest
from azure.core.credentials import AccessToken
from azure.storage.queue import QueueClient

from shared.config import StorageSettings, load_settings
from shared.storage import build_storage_clients, get_storage_clients
from tests.conftest import BASE_TEST_ENV, Azurite

pytestmark = pytest.mark.integration


def test_blob_and_queue_round_trip_through_the_factory(azurite_env: Azurite) -> None:
    clients = get_storage_clients()
    container = clients.blob.get_container_client(f"t{uuid.uuid4().hex}")
    container.create_container()
    payload = b"synthetic document bytes"
    container.upload_blob("doc", payload)
    assert container.download_blob("doc").readall() == payload

    name = f"q{uuid.uuid4().hex}"
    queue = clients.queue_client(name)
    queue.create_queue()
    queue.send_message('{"documentId":"d-1"}')
    # The Functions queue trigger reads base64 (host.json messageEncoding): check what is stored, with a
    # client that does not decode.
    raw_client = QueueClient.from_connection_string(azurite_env.connection_string, name)
    (peeked,) = raw_client.peek_messages(max_messages=1)
    assert base64.b64decode(peeked.content) == b'{"documentId":"d-1"}'
    received = list(queue.receive_messages(max_messages=1))
    assert [m.content for m in received] == ['{"documentId":"d-1"}']


class _RecordingCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("synthetic-token", 4102444800)


def test_azure_shape_uses_service_uris_and_the_managed_identity_credential() -> None:
    settings = load_settings(
        {
            **{k: v for k, v in BASE_TEST_ENV.items() if k != "PhiStorage"},
            "PhiStorage__blobServiceUri": "https://stphi.blob.core.windows.net",
            "PhiStorage__queueServiceUri": "https://stphi.queue.core.windows.net",
        }
    )
    credential = _RecordingCredential()
    clients = build_storage_clients(settings.storage, credential_factory=lambda: credential)
    assert clients.blob.url.startswith("https://stphi.blob.core.windows.net")
    assert clients.queue.url.startswith("https://stphi.queue.core.windows.net")
    assert clients.blob.credential is credential
    assert clients.queue.credential is credential


def test_connection_string_path_never_asks_for_a_credential(azurite: Azurite) -> None:
    def no_credential() -> _RecordingCredential:
        raise AssertionError("emulator connection must not build a credential")

    storage = load_settings(BASE_TEST_ENV).storage
    local = StorageSettings(**{**storage.__dict__, "connection_string": azurite.connection_string})
    clients = build_storage_clients(local, credential_factory=no_credential)
    assert clients.blob.account_name == "devstoreaccount1"
