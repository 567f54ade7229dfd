"""The PHI document store over Blob storage (`shared.storage` clients).

- Blob names are random UUIDs. No PHI in names, paths or metadata; we set no metadata at all.
- Allowed content types, each checked against the body's leading bytes:
  `application/pdf` (`%PDF-`), `image/png` (the 8-byte PNG signature), `image/jpeg` (`FF D8 FF`),
  `text/plain` (no signature exists, so the whole body must be UTF-8 without NUL or other C0 controls
  except tab, LF, CR; checked incrementally while streaming). Anything else is 415.
- A size limit enforced while streaming (413), never by trusting a declared length.
- A SHA-256 of the bytes as uploaded, returned for the caller to store with the record and checked
  again on a verified read.
- Uploads stream from the request body to Blob in chunks with no temporary files: PHI never touches
  the function's local disk. Downloads stream the same way.
- An optional encryption scope (infra sets `PHI_ENCRYPTION_SCOPE`) applies to every write.
- Storage failures (network, 5xx, throttling) become `DependencyUnavailable("storage")` (503).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast, get_args

from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContentSettings

from shared.errors import AppError, DependencyUnavailable, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.schemas.types import ContentType

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "text/plain": (),
}
ALLOWED_CONTENT_TYPES = frozenset(_SIGNATURES)
if set(get_args(ContentType)) != ALLOWED_CONTENT_TYPES:  # keep the schema's ContentType in step
    raise TypeError("shared.schemas.types.ContentType and the blob allow-list differ")
_SNIFF_BYTES = 8
_TEXT_CONTROLS = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}


@dataclass(frozen=True)
class StoredBlob:
    blob_name: str
    content_type: ContentType
    size_bytes: int
    sha256: str


class IntegrityError(AppError):
    status, code, title = 500, "integrity_check_failed", "The stored document failed its integrity check"


def normalise_content_type(declared: str | None) -> ContentType:
    """`text/plain; charset=utf-8` -> `text/plain`; anything not allowed -> 415."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    if base not in ALLOWED_CONTENT_TYPES:
        raise UnsupportedMediaType()
    if base == "text/plain" and ";" in (declared or ""):
        params = (declared or "").split(";", 1)[1].replace(" ", "").lower()
        if params not in ("", "charset=utf-8"):
            raise UnsupportedMediaType("unsupported_charset")
    return cast(ContentType, base)


class _Guard:
    """Counts, hashes and checks chunks as they pass from the request to Blob."""

    def __init__(self, content_type: ContentType, max_bytes: int) -> None:
        self.content_type = content_type
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()
        self._head = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")() if content_type == "text/plain" else None

    def feed(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge()
        if len(self._head) < _SNIFF_BYTES:
            self._head += chunk[: _SNIFF_BYTES - len(self._head)]
            self._check_signature(final=False)
        if self._decoder is not None:
            self._check_text(chunk, final=False)
        self.digest.update(chunk)
        return chunk

    def finish(self) -> None:
        if self.size == 0:
            raise UnsupportedMediaType("empty_document")
        self._check_signature(final=True)
        if self._decoder is not None:
            self._check_text(b"", final=True)

    def _check_signature(self, final: bool) -> None:
        signatures = _SIGNATURES[self.content_type]
        if not signatures:
            return
        for sig in signatures:
            n = min(len(sig), len(self._head))
            if self._head[:n] == sig[:n] and (n == len(sig) or not final):
                return
        raise UnsupportedMediaType("content_does_not_match_type")

    def _check_text(self, chunk: bytes, final: bool) -> None:
        assert self._decoder is not None
        try:
            self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            raise UnsupportedMediaType("content_does_not_match_type") from None
        if any(b in _TEXT_CONTROLS for b in chunk):
            raise UnsupportedMediaType("content_does_not_match_type")


def _chunks(body: bytes | Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    if isinstance(body, bytes | bytearray | memoryview):
        view = memoryview(body)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    for chunk in body:
        if chunk:
            yield bytes(chunk)


class DocumentStore:
    def __init__(
        self,
        blob_service: BlobServiceClient,
        container: str,
        *,
        max_bytes: int,
        encryption_scope: str | None = None,
    ) -> None:
        self._container = blob_service.get_container_client(container)
        self._max_bytes = max_bytes
        self._scope = encryption_scope

    def upload(self, body: bytes | Iterable[bytes], declared_content_type: str | None) -> StoredBlob:
        """Stream `body` into a new blob with a random name; 413/415 before anything is committed."""
        content_type = normalise_content_type(declared_content_type)
        guard = _Guard(content_type, self._max_bytes)
        blob_name = str(uuid.uuid4())

        def stream() -> Iterator[bytes]:
            for chunk in _chunks(body):
                yield guard.feed(chunk)
            guard.finish()

        kwargs: dict[str, Any] = {
            "overwrite": False,
            "content_settings": ContentSettings(content_type=content_type),
            "max_concurrency": 1,
        }
        if self._scope:
            kwargs["encryption_scope"] = self._scope
        # A bad body raises from inside the stream: staged blocks stay uncommitted (Blob discards them)
        # and no blob exists under the name.
        with _storage_errors():
            self._container.upload_blob(blob_name, stream(), **kwargs)
        return StoredBlob(blob_name, content_type, guard.size, guard.digest.hexdigest())

    def stream(self, blob_name: str) -> Iterator[bytes]:
        """The blob's bytes in chunks, straight from the service (no local copy)."""
        with _storage_errors():
            downloader = self._container.download_blob(blob_name, max_concurrency=1)
        chunks = downloader.chunks()
        while True:
            with _storage_errors():
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def read_verified(self, blob_name: str, sha256: str) -> bytes:
        """The whole document, after checking it against the hash stored with its record."""
        digest = hashlib.sha256()
        parts: list[bytes] = []
        for chunk in self.stream(blob_name):
            digest.update(chunk)
            parts.append(chunk)
        if digest.hexdigest() != sha256:
            logger.error("Document failed its integrity check")
            raise IntegrityError()
        return b"".join(parts)

    def verify(self, blob_name: str, sha256: str, content_type: str) -> int:
        """Re-check a stored blob (streamed, no copy): its type signature and its hash. Returns its size.

        `UnsupportedMediaType` if the bytes do not match the type, `IntegrityError` if the hash differs,
        `NotFound` if the blob is gone.
        """
        guard = _Guard(normalise_content_type(content_type), max_bytes=self._max_bytes)
        for chunk in self.stream(blob_name):
            guard.feed(chunk)
        guard.finish()
        if guard.digest.hexdigest() != sha256:
            logger.error("Document failed its integrity check")
            raise IntegrityError()
        return guard.size

    def delete(self, blob_name: str) -> bool:
        """Delete a blob (and its snapshots). False when it was already gone (retention is idempotent)."""
        try:
            with _storage_errors():
                self._container.delete_blob(blob_name, delete_snapshots="include")
        except NotFound:
            return False
        return True

    def ensure_container(self) -> None:
        """Local development only: in Azure, infra creates the container."""
        from azure.core.exceptions import ResourceExistsError

        try:
            with _storage_errors():
                self._container.create_container()
        except ResourceExistsError:
            pass


class _storage_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, AppError):
            return
        if isinstance(exc, ResourceNotFoundError):
            raise NotFound() from None
        if isinstance(exc, ServiceRequestError | ServiceResponseError) or (  # refused, or reset mid-call
            isinstance(exc, HttpResponseError)
            and (exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429)
        ):
            logger.warning("Storage is unavailable", extra={"error_type": type(exc).__name__})
            raise DependencyUnavailable("storage") from None
