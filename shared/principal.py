"""The authenticated caller, as handlers see it. Handlers never see the raw token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    oid: str
    tid: str
    azp: str
    scopes: frozenset[str]
    roles: frozenset[str]

    @property
    def is_app_only(self) -> bool:
        """Application tokens carry `roles` and no `scp`."""
        return not self.scopes
