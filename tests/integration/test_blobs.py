"""The PHI document store against a real Azurite: names, types, limits, integrity, no local disk."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from shared.blobs import DocumentStore, IntegrityError
from shared.data import get_document_store
from shared.errors import DependencyUnavailable, NotFound, PayloadTooLarge, UnsupportedMediaType
from tests.conftest import Azurite

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"synthetic clinical document\n" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
TEXT = "Synthetic note: patient reports feeling better. é\n".encode() * 100


@pytest.fixture
def store(azurite: Azurite) -> DocumentStore:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"phi{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    return DocumentStore(service, container, max_bytes=64 * 1024)


def _container(store: DocumentStore) -> Any:
    return store._container


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg"), (TEXT, "text/plain; charset=utf-8")],
)
def test_upload_and_download_round_trip(store: DocumentStore, body: bytes, content_type: str) -> None:
    stored = store.upload(body, content_type)
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert stored.size_bytes == len(body)
    assert stored.content_type == content_type.split(";")[0]
    assert b"".join(store.stream(stored.blob_name)) == body
    assert store.read_verified(stored.blob_name, stored.sha256) == body


def test_blob_names_are_random_uuids_with_no_metadata(store: DocumentStore) -> None:
    a = store.upload(PDF, "application/pdf")
    b = store.upload(PDF, "application/pdf")
    assert a.blob_name != b.blob_name
    for stored in (a, b):
        assert str(uuid.UUID(stored.blob_name)) == stored.blob_name
        props = _container(store).get_blob_client(stored.blob_name).get_blob_properties()
        assert props.metadata == {}
        assert props.content_settings.content_type == "application/pdf"


@pytest.mark.parametrize(
    ("body", "declared", "code"),
    [
        (PNG, "application/pdf", "content_does_not_match_type"),
        (b"%PDX-1.7", "application/pdf", "content_does_not_match_type"),
        (b"%PD", "application/pdf", "content_does_not_match_type"),  # too short to carry the signature
        (PDF, "application/zip", "unsupported_media_type"),
        (PDF, None, "unsupported_media_type"),
        (b"MZ\x90\x00 executable", "text/plain", "content_does_not_match_type"),
        (b"\xff\xfe not utf-8", "text/plain", "content_does_not_match_type"),
        (TEXT, "text/plain; charset=latin-1", "unsupported_charset"),
        (b"", "application/pdf", "empty_document"),
    ],
)
def test_content_type_allow_list_is_checked_against_magic_bytes(
    store: DocumentStore, body: bytes, declared: str | None, code: str
) -> None:
    before = list(_container(store).list_blobs())
    with pytest.raises(UnsupportedMediaType) as caught:
        store.upload(body, declared)
    assert caught.value.code == code and caught.value.status == 415
    assert list(_container(store).list_blobs()) == before


def test_size_limit_is_enforced_while_streaming_and_nothing_is_committed(store: DocumentStore) -> None:
    def endless() -> Iterator[bytes]:
        yield b"%PDF-1.7\n"
        while True:
            yield b"x" * 8192

    with pytest.raises(PayloadTooLarge):
        store.upload(endless(), "application/pdf")
    with pytest.raises(PayloadTooLarge):
        store.upload(b"%PDF-" + b"x" * (64 * 1024), "application/pdf")
    assert list(_container(store).list_blobs()) == []
    assert store.upload(b"%PDF-" + b"x" * (64 * 1024 - 5), "application/pdf").size_bytes == 64 * 1024


def test_a_tampered_blob_fails_the_integrity_check(store: DocumentStore) -> None:
    stored = store.upload(PDF, "application/pdf")
    _container(store).upload_blob(stored.blob_name, b"%PDF-1.7 tampered", overwrite=True)
    with pytest.raises(IntegrityError) as caught:
        store.read_verified(stored.blob_name, stored.sha256)
    assert caught.value.code == "integrity_check_failed"


def test_missing_blob_is_not_found_and_delete_is_idempotent(store: DocumentStore) -> None:
    with pytest.raises(NotFound):
        list(store.stream(str(uuid.uuid4())))
    stored = store.upload(PDF, "application/pdf")
    assert store.delete(stored.blob_name) is True
    assert store.delete(stored.blob_name) is False


def test_storage_outage_is_a_503() -> None:
    dead = BlobServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        retry_total=0,
    )
    with pytest.raises(DependencyUnavailable) as caught:
        DocumentStore(dead, "phi", max_bytes=1024).upload(b"%PDF-1", "application/pdf")
    assert caught.value.dependency == "storage"


def test_encryption_scope_is_sent_on_every_write(azurite: Azurite) -> None:
    """Azurite ignores scopes, so the request header the SDK sends is what is checked."""
    seen: list[str | None] = []
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"phi{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    store = DocumentStore(service, container, max_bytes=1024, encryption_scope="phi-scope")

    def record(request: Any) -> None:
        if request.http_request.method == "PUT":
            seen.append(request.http_request.headers.get("x-ms-encryption-scope"))

    original = store._container.upload_blob

    def upload(*args: Any, **kwargs: Any) -> Any:
        return original(*args, raw_request_hook=record, **kwargs)

    store._container.upload_blob = upload  # type: ignore[method-assign]
    store.upload(b"%PDF-1.7 x", "application/pdf")
    assert seen and all(value == "phi-scope" for value in seen)


# ------------------------------------------------------------------ PHI never touches the local disk
class _DiskWatch:
    """Records every file opened for writing (Python audit events) and any new temp-dir entry."""

    active = False
    writes: list[str] = []  # noqa: RUF012 - shared with the process-wide audit hook
    hook_installed = False

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls.active:
            return
        if event == "open" and len(args) >= 2:
            path, mode = args[0], args[1]
            flags = args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(m in mode for m in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing and not isinstance(path, int):
                cls.writes.append(str(path))
        elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
            cls.writes.append(f"{event}:{args}")


@contextmanager
def watch_disk(tmp_root: Path) -> Iterator[_DiskWatch]:
    if not _DiskWatch.hook_installed:
        sys.addaudithook(_DiskWatch.hook)  # audit hooks cannot be removed; it is inert when inactive
        _DiskWatch.hook_installed = True
    before = set(tmp_root.rglob("*"))
    seen_during: set[Path] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen_during.update(set(tmp_root.rglob("*")) - before)
            stop.wait(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    _DiskWatch.writes.clear()
    _DiskWatch.active = True
    poller.start()
    try:
        yield _DiskWatch
    finally:
        _DiskWatch.active = False
        stop.set()
        poller.join()
        seen_during.update(set(tmp_root.rglob("*")) - before)
        _DiskWatch.seen = sorted(str(p) for p in seen_during)  # type: ignore[attr-defined]


def test_upload_and_download_write_nothing_to_local_disk(
    store: DocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = tmp_path / "tmp"
    watched.mkdir()
    monkeypatch.setenv("TMPDIR", str(watched))
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    body = b"%PDF-1.7\n" + os.urandom(60 * 1024)

    with watch_disk(watched) as watch:
        stored = store.upload(body, "application/pdf")
        downloaded = b"".join(store.stream(stored.blob_name))
        verified = store.read_verified(stored.blob_name, stored.sha256)
    assert downloaded == body == verified
    assert watch.writes == []
    assert watch.seen == []  # type: ignore[attr-defined]


def test_the_disk_watch_itself_detects_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watched = tmp_path / "tmp"
    watched.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    with watch_disk(watched) as watch, tempfile.TemporaryFile() as spill:
        spill.write(b"phi")
    assert watch.writes  # the control: a temp file during the window is caught


def test_the_service_locator_builds_the_store_on_azurite(azurite_env: Azurite) -> None:
    store = get_document_store()
    stored = store.upload(PDF, "application/pdf")
    assert store.read_verified(stored.blob_name, stored.sha256) == PDF
