"""The reference workload's role model: who may call which route, and which outbound view they get.

Two kinds of caller (docs/authorization.md):
- people, through a client app with a *delegated* token: it must carry the API's scope
  (`DELEGATED_SCOPE`) in `scp` AND one of the route's user app roles in `roles`. The scope says "this
  client app may call the API for the user"; the role says "this user may do this".
- systems, with an *app-only* (client credentials) token: no `scp`, and an application app role in
  `roles`.
A delegated token is never checked against application roles, nor an app-only token against user
roles, so a role assigned to the wrong kind of principal grants nothing.

Role and scope values are the `value` strings of the Entra app registration (docs/authorization.md
lists the manifest); change them here and there together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from shared.errors import Forbidden
from shared.principal import Principal

DELEGATED_SCOPE = "Clinical.Access"


class Role(StrEnum):
    CLINICIAN = "Clinician"
    INTAKE = "Intake"
    BILLING = "Billing"
    RESEARCHER = "Researcher"
    LAB_SYSTEM = "LabSystem"  # application role: assigned to the lab system's service principal


USER_ROLES = frozenset({Role.CLINICIAN, Role.INTAKE, Role.BILLING, Role.RESEARCHER})
APP_ROLES = frozenset({Role.LAB_SYSTEM})


@dataclass(frozen=True)
class Permission:
    """What a route requires. Any one of `user_roles` (with a scope) or of `app_roles` suffices."""

    name: str
    user_roles: frozenset[str] = frozenset()
    app_roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset({DELEGATED_SCOPE})

    def allows(self, principal: Principal) -> bool:
        if principal.is_app_only:
            return bool(self.app_roles & principal.roles)
        return bool(self.scopes & principal.scopes) and bool(self.user_roles & principal.roles)

    def require(self, principal: Principal) -> None:
        if not self.allows(principal):
            raise Forbidden()


PATIENT_CREATE = Permission("patients.create", user_roles=frozenset({Role.CLINICIAN, Role.INTAKE}))
PATIENT_READ = Permission("patients.read", user_roles=USER_ROLES)
DOCUMENT_UPLOAD = Permission("documents.upload", user_roles=frozenset({Role.CLINICIAN, Role.INTAKE}))
DOCUMENT_DOWNLOAD = Permission("documents.download", user_roles=frozenset({Role.CLINICIAN}))
LAB_RESULTS_INGEST = Permission("lab_results.ingest", app_roles=APP_ROLES)

PERMISSIONS: tuple[Permission, ...] = (
    PATIENT_CREATE,
    PATIENT_READ,
    DOCUMENT_UPLOAD,
    DOCUMENT_DOWNLOAD,
    LAB_RESULTS_INGEST,
)

# Outbound view names the data layer projects (one explicit field allow-list per view).
VIEW_BY_ROLE: Mapping[Role, str] = MappingProxyType(
    {
        Role.CLINICIAN: "clinician",
        Role.INTAKE: "intake",
        Role.BILLING: "billing",
        Role.RESEARCHER: "researcher",
    }
)
# A user holding several roles gets the view of the first one here. Each role's view is already the
# minimum necessary for that job and the organisation granted every role the user holds, so the
# order only has to be deterministic and must not break care: a clinician who also does research
# must still see the clinical view. Audit records which view was served.
VIEW_PRECEDENCE: tuple[Role, ...] = (Role.CLINICIAN, Role.INTAKE, Role.BILLING, Role.RESEARCHER)


def view_for(principal: Principal) -> str:
    """The one outbound view for this caller; `Forbidden` if the caller has no user role."""
    if principal.is_app_only:
        raise Forbidden()
    for role in VIEW_PRECEDENCE:
        if role in principal.roles:
            return VIEW_BY_ROLE[role]
    raise Forbidden()
