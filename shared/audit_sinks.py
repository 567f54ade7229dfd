"""Where audit events go: an OTel log record (Log Analytics) and an append-only blob archive.

The archive is JSON lines in append blobs, one blob per day per process (`YYYY/MM/DD/<tag>.jsonl` in the
`audit` container, which infra makes immutable with time-based retention and protected append writes).
Per-process blobs keep writers from contending, and stay clear of the 50,000-block limit of one append
blob; on that limit the sink rolls to a new tag.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContainerClient
from opentelemetry._logs import LogRecord, SeverityNumber, get_logger

from shared.audit_event import AuditEvent
from shared.telemetry.setup import active_pipeline

AUDIT_EVENT_NAME = "audit"


class AuditSink(Protocol):
    def write(self, event: AuditEvent) -> None: ...


def _network_of(address: str | None) -> str | None:
    """Log Analytics gets the /24 (IPv4) or /48 (IPv6) network; the full address stays in the archive."""
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class OTelAuditSink:
    """One OTel log record per event: custom event `audit` (App Insights `AppEvents`, Name == "audit")."""

    def write(self, event: AuditEvent) -> None:
        record = event.to_record()
        record["client_address"] = _network_of(event.client_address)
        attributes: dict[str, str | int | bool | list[str]] = {
            "microsoft.custom_event.name": AUDIT_EVENT_NAME,
            "event.name": AUDIT_EVENT_NAME,
        }
        for key, value in record.items():
            if value is not None:
                attributes[f"audit.{key}"] = value  # type: ignore[assignment]
        pipeline = active_pipeline()
        logger = pipeline.otel_logger(AUDIT_EVENT_NAME) if pipeline else get_logger(AUDIT_EVENT_NAME)
        logger.emit(
            LogRecord(
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=AUDIT_EVENT_NAME,
                attributes=attributes,
                event_name=AUDIT_EVENT_NAME,
            )
        )


class BlobArchiveAuditSink:
    """Append-only JSON lines; raises on any storage failure so the caller can fail closed."""

    def __init__(self, container_factory: Callable[[], ContainerClient]) -> None:
        self._container_factory = container_factory
        self._tag = uuid.uuid4().hex[:16]
        self._created: set[str] = set()
        self._lock = threading.Lock()

    def blob_name(self, recorded: datetime) -> str:
        return f"{recorded:%Y/%m/%d}/{self._tag}.jsonl"

    def write(self, event: AuditEvent) -> None:
        line = (json.dumps(event.to_record(), separators=(",", ":"), sort_keys=True) + "\n").encode()
        container = self._container_factory()
        with self._lock:
            try:
                self._append(container, self.blob_name(event.recorded), line)
            except HttpResponseError as error:
                if getattr(error, "error_code", None) != "BlockCountExceedsLimit":
                    raise
                self._tag = uuid.uuid4().hex[:16]
                self._append(container, self.blob_name(event.recorded), line)

    def _append(self, container: ContainerClient, name: str, line: bytes) -> None:
        blob = container.get_blob_client(name)
        if name not in self._created:
            self._create(container, name)
        try:
            blob.append_block(line)
        except ResourceNotFoundError:
            # Deleted under us (or a new container locally): recreate once, then append.
            self._created.discard(name)
            self._create(container, name)
            blob.append_block(line)

    def _create(self, container: ContainerClient, name: str) -> None:
        blob = container.get_blob_client(name)
        try:
            blob.create_append_blob(if_none_match="*")  # never truncates an existing day's archive
        except (ResourceExistsError, ResourceModifiedError):
            pass  # the day's blob exists (this or an earlier process run): append to it
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            blob.create_append_blob(if_none_match="*")
        self._created.add(name)
