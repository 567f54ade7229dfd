"""The audit trail: every PHI read, create, update, delete and export, and every denied attempt.

Call it from HTTP handlers and from queue / Service Bus / timer triggers alike::

    trail = audit_trail()
    trail.record_access(AuditAction.READ, "patient", patient_id, principal, context)
    trail.record_denied("insufficient_scope", principal, context, forwarded_for=req.headers.get(...))
    trail.record_batch(AuditAction.DELETE, "patient", count, context)        # timer sweep

Fail closed: if any sink cannot write, `record*` raises `DependencyUnavailable("audit")`, so the PHI
operation turns into a 503 and returns nothing. Entity ids never reach a sink: they are replaced by a
keyed pseudonym from the injected `EntityPseudonymizer` (the data layer's HMAC pseudonymizer, wired at
start-up with `register_pseudonymizer`); with none registered, recording an entity id fails closed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from shared.audit_event import (
    AuditAction,
    AuditActor,
    AuditEntity,
    AuditEvent,
    AuditEventType,
    AuditOutcome,
    AuditSource,
)
from shared.audit_sinks import AuditSink, BlobArchiveAuditSink, OTelAuditSink
from shared.config import get_settings
from shared.errors import AppError, DependencyUnavailable
from shared.principal import Principal
from shared.scrub import exception_type_name, safe
from shared.storage import get_storage_clients

__all__ = [
    "AuditAction",
    "AuditActor",
    "AuditEntity",
    "AuditEvent",
    "AuditEventType",
    "AuditOutcome",
    "AuditSource",
    "AuditTrail",
    "EntityPseudonymizer",
    "audit_trail",
    "client_address_from",
    "install_audit_trail",
    "register_pseudonymizer",
]

logger = logging.getLogger(__name__)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class EntityPseudonymizer(Protocol):
    """Keyed, stable pseudonyms (implemented by `shared.pseudonym.KeyedPseudonymizer`)."""

    def pseudonym(self, kind: str, stable_id: str) -> str: ...


def client_address_from(forwarded_for: str | None, trust_forwarded_for: bool) -> str | None:
    """The caller's IP as APIM forwarded it, only when the deployment says to trust that header.

    APIM's inbound policy overwrites `X-Forwarded-For` with the address it saw, so the leftmost entry
    is APIM's view of the client (hops after APIM append to the right). Without trust, no address is
    recorded at all rather than a spoofable one.
    """
    if not trust_forwarded_for or not forwarded_for:
        return None
    first = forwarded_for.split(",", 1)[0].strip()
    if first.startswith("[") and "]" in first:  # [v6]:port
        first = first[1 : first.index("]")]
    elif first.count(":") == 1:  # v4:port
        first = first.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(first))
    except ValueError:
        return None


def actor_of(principal: Principal | None) -> AuditActor | None:
    if principal is None:
        return None
    return AuditActor(
        oid=principal.oid,
        tid=principal.tid,
        azp=principal.azp,
        roles=tuple(sorted(principal.roles)),
        app_only=principal.is_app_only,
    )


def _trace_id_of(context: Any) -> str | None:
    parent = getattr(context, "trace_parent", None)
    if parent is None:
        parent = getattr(getattr(context, "trace_context", None), "trace_parent", None)
    match = _TRACEPARENT.match(parent) if isinstance(parent, str) else None
    return match.group(1) if match and match.group(1) != "0" * 32 else None


class AuditTrail:
    def __init__(
        self,
        sinks: Sequence[AuditSink],
        *,
        app: str,
        pseudonymizer: EntityPseudonymizer | None = None,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.sinks = tuple(sinks)
        self.app = app
        self.pseudonymizer = pseudonymizer
        self.trust_forwarded_for = trust_forwarded_for

    # -------------------------------------------------------------------------------- low level
    def record(self, event: AuditEvent) -> AuditEvent:
        for sink in self.sinks:
            try:
                sink.write(event)
            except Exception as exc:  # noqa: BLE001 - any sink failure fails the operation closed
                logger.error("audit sink %s failed: %s", safe(type(sink).__name__), exception_type_name(exc))
                raise DependencyUnavailable("audit") from None
        return event

    def entity(self, entity_type: str, entity_id: str | None, count: int | None = None) -> AuditEntity:
        if entity_id is None:
            return AuditEntity(type=entity_type, count=count)
        if self.pseudonymizer is None:
            raise DependencyUnavailable("audit")  # never fall back to the raw id
        try:
            pseudonym = self.pseudonymizer.pseudonym(entity_type, entity_id)
        except AppError:
            raise
        except Exception:  # noqa: BLE001 - a pseudonymizer failure must not leak the id in a traceback
            raise DependencyUnavailable("audit") from None
        return AuditEntity(type=entity_type, pseudonym=pseudonym, count=count)

    def source(self, context: Any, trigger: str) -> AuditSource:
        function = str(getattr(context, "function_name", "") or "unknown")
        invocation = getattr(context, "invocation_id", None)
        return AuditSource(
            app=self.app,
            function=function,
            invocation_id=str(invocation) if invocation else None,
            trigger=trigger,
        )

    # ------------------------------------------------------------------------------- call sites
    def record_access(
        self,
        action: AuditAction,
        entity_type: str,
        entity_id: str | None,
        principal: Principal | None,
        context: Any,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        *,
        event_type: AuditEventType = AuditEventType.REST,
        trigger: str = "http",
        purpose_of_use: str | None = None,
        forwarded_for: str | None = None,
        outcome_reason: str | None = None,
        count: int | None = None,
    ) -> AuditEvent:
        """One PHI access (HTTP handler or trigger). `context`: the Functions context or RequestContext."""
        trace_id = _trace_id_of(context)
        event = AuditEvent(
            type=event_type,
            subtype=str(getattr(context, "function_name", "") or action.name.lower()),
            action=action,
            outcome=outcome,
            source=self.source(context, trigger),
            actor=actor_of(principal),
            entity=self.entity(entity_type, entity_id, count),
            outcome_reason=outcome_reason,
            purpose_of_use=purpose_of_use,
            correlation_id=getattr(context, "correlation_id", None) or trace_id,
            trace_id=trace_id,
            client_address=client_address_from(forwarded_for, self.trust_forwarded_for),
        )
        return self.record(event)

    def record_denied(
        self,
        reason: str,
        principal: Principal | None,
        context: Any,
        *,
        action: AuditAction = AuditAction.EXECUTE,
        entity_type: str | None = None,
        forwarded_for: str | None = None,
        trigger: str = "http",
    ) -> AuditEvent:
        """A 401 (principal None) or 403 on a PHI route. No entity id: the caller was never let near it."""
        trace_id = _trace_id_of(context)
        event = AuditEvent(
            type=AuditEventType.REST if trigger == "http" else AuditEventType.SECURITY_ALERT,
            subtype=str(getattr(context, "function_name", "") or "denied"),
            action=action,
            outcome=AuditOutcome.DENIED,
            source=self.source(context, trigger),
            actor=actor_of(principal),
            entity=AuditEntity(type=entity_type) if entity_type else None,
            outcome_reason=reason,
            correlation_id=getattr(context, "correlation_id", None) or trace_id,
            trace_id=trace_id,
            client_address=client_address_from(forwarded_for, self.trust_forwarded_for),
        )
        return self.record(event)

    def record_batch(
        self,
        action: AuditAction,
        entity_type: str,
        count: int,
        context: Any,
        *,
        trigger: str = "timer",
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
    ) -> AuditEvent:
        """A system operation over many records (retention sweep): the count, never the ids."""
        return self.record_access(
            action,
            entity_type,
            None,
            None,
            context,
            outcome,
            event_type=AuditEventType.APPLICATION_ACTIVITY,
            trigger=trigger,
            count=count,
        )


_pseudonymizer_factory: Callable[[], EntityPseudonymizer] | None = None
_installed: AuditTrail | None = None


def register_pseudonymizer(factory: Callable[[], EntityPseudonymizer] | None) -> None:
    """Composition root: how the audit trail gets the data layer's keyed pseudonymizer."""
    global _pseudonymizer_factory
    _pseudonymizer_factory = factory
    _build_audit_trail.cache_clear()


def install_audit_trail(trail: AuditTrail | None) -> None:
    """Use `trail` instead of the one built from settings (tests; None restores the default)."""
    global _installed
    _installed = trail


def audit_trail() -> AuditTrail:
    """The process-wide trail: archive blob sink first, then the OTel sink."""
    return _installed if _installed is not None else _build_audit_trail()


@lru_cache(maxsize=1)
def _build_audit_trail() -> AuditTrail:
    settings = get_settings()
    container = settings.storage.audit_container
    archive = BlobArchiveAuditSink(lambda: get_storage_clients().blob.get_container_client(container))
    return AuditTrail(
        # Archive first: if the durable record cannot be written, nothing else claims it happened.
        sinks=[archive, OTelAuditSink()],
        app=settings.telemetry.service_name,
        pseudonymizer=_pseudonymizer_factory() if _pseudonymizer_factory is not None else None,
        trust_forwarded_for=settings.telemetry.trust_forwarded_for,
    )
