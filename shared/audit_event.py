"""The audit record: who did what to which (pseudonymous) entity, when, from where, with what outcome.

Aligned with FHIR R4 AuditEvent / IHE ATNA (docs/telemetry-and-audit.md maps every field). Every field
is a code, a workforce/application identifier, a pseudonym, a count or a timestamp, and each is checked
against its format when the event is built: a raw MRN, a name or a free-text reason cannot be put into
an `AuditEvent`, it raises `ValueError` (a programming error, caught by tests, never by a caller).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

SCHEMA_VERSION = 1


class AuditAction(StrEnum):
    """FHIR AuditEvent.action (http://hl7.org/fhir/audit-event-action)."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"  # export, sweep, any operation that is not plain CRUD


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"

    @property
    def fhir_code(self) -> str:
        """FHIR AuditEvent.outcome: 0 success, 4 minor failure (denied), 8 serious failure."""
        return {"success": "0", "denied": "4", "failure": "8"}[self.value]


class AuditEventType(StrEnum):
    """FHIR AuditEvent.type: audit-event-type `rest`, DICOM DCM codes for the rest."""

    REST = "rest"
    APPLICATION_ACTIVITY = "110100"
    EXPORT = "110106"
    QUERY = "110112"
    SECURITY_ALERT = "110113"


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CODE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
# Entra app role values: printable ASCII without spaces, quotes or backslashes (punctuation such as
# `&` and `+` is allowed there); workforce authorisation labels, never patient data.
_ROLE = re.compile(r"^[!#-\[\]-~]{1,256}$")
_ENTITY_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Keyed-hash pseudonyms only (`v<key version>:<hex digest>` from shared.pseudonym): never a raw id.
_PSEUDONYM = re.compile(r"^v[A-Za-z0-9]{1,64}:[0-9a-f]{32,128}$")
_PURPOSE = re.compile(r"^[A-Z]{2,16}$")  # HL7 v3 PurposeOfUse codes: TREAT, HPAYMT, HOPERAT, ETREAT...
_HEX_ID = re.compile(r"^[0-9a-f]{16,64}$")


def _check(name: str, value: str | None, pattern: re.Pattern[str]) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"audit field {name!r} does not have the required format")


@dataclass(frozen=True)
class AuditActor:
    """FHIR AuditEvent.agent: the Entra identity (object id, tenant, client app, roles)."""

    oid: str
    tid: str
    azp: str
    roles: tuple[str, ...] = ()
    app_only: bool = False

    def __post_init__(self) -> None:
        for name in ("oid", "tid", "azp"):
            _check(name, getattr(self, name), _GUID)
        for role in self.roles:
            _check("role", role, _ROLE)


@dataclass(frozen=True)
class AuditSource:
    """FHIR AuditEvent.source: app, function, invocation, trigger."""

    app: str
    function: str
    invocation_id: str | None = None
    trigger: str = "http"

    def __post_init__(self) -> None:
        _check("app", self.app, _CODE)
        _check("function", self.function, _CODE)
        _check("invocation_id", self.invocation_id, _CODE)
        _check("trigger", self.trigger, _CODE)


@dataclass(frozen=True)
class AuditEntity:
    """FHIR AuditEvent.entity: resource type and pseudonymous id (or a count, for batch operations)."""

    type: str
    pseudonym: str | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        _check("entity.type", self.type, _ENTITY_TYPE)
        _check("entity.pseudonym", self.pseudonym, _PSEUDONYM)
        if self.count is not None and self.count < 0:
            raise ValueError("audit field 'entity.count' must not be negative")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditEvent:
    type: AuditEventType
    subtype: str
    action: AuditAction
    outcome: AuditOutcome
    source: AuditSource
    actor: AuditActor | None = None  # None: the caller could not be authenticated (401)
    entity: AuditEntity | None = None
    outcome_reason: str | None = None  # a stable error code, e.g. insufficient_scope
    purpose_of_use: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    client_address: str | None = None
    recorded: datetime = field(default_factory=_now)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        _check("subtype", self.subtype, _CODE)
        _check("outcome_reason", self.outcome_reason, _CODE)
        _check("purpose_of_use", self.purpose_of_use, _PURPOSE)
        _check("correlation_id", self.correlation_id, _HEX_ID)
        _check("trace_id", self.trace_id, _HEX_ID)
        _check("event_id", self.event_id, _HEX_ID)
        if self.client_address is not None:
            ipaddress.ip_address(self.client_address)  # ValueError unless an IP address
        if self.recorded.tzinfo is None or self.recorded.utcoffset() != UTC.utcoffset(None):
            raise ValueError("audit field 'recorded' must be UTC")

    def to_record(self) -> dict[str, object]:
        """The flat JSON form, identical in the archive and (prefixed `audit.`) in Log Analytics."""
        actor, entity = self.actor, self.entity
        return {
            "schema": SCHEMA_VERSION,
            "event_id": self.event_id,
            "recorded": self.recorded.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "type": self.type.value,
            "subtype": self.subtype,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "outcome_code": self.outcome.fhir_code,
            "outcome_reason": self.outcome_reason,
            "actor_oid": actor.oid if actor else None,
            "actor_tid": actor.tid if actor else None,
            "actor_azp": actor.azp if actor else None,
            "actor_roles": list(actor.roles) if actor else [],
            "actor_app_only": actor.app_only if actor else None,
            "purpose_of_use": self.purpose_of_use,
            "source_app": self.source.app,
            "source_function": self.source.function,
            "source_invocation_id": self.source.invocation_id,
            "source_trigger": self.source.trigger,
            "entity_type": entity.type if entity else None,
            "entity_pseudonym": entity.pseudonym if entity else None,
            "entity_count": entity.count if entity else None,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "client_address": self.client_address,
        }
