from __future__ import annotations

import pytest

from shared.errors import Forbidden
from shared.principal import Principal
from shared.roles import (
    DELEGATED_SCOPE,
    DOCUMENT_DOWNLOAD,
    DOCUMENT_UPLOAD,
    LAB_RESULTS_INGEST,
    PATIENT_CREATE,
    PATIENT_READ,
    PERMISSIONS,
    VIEW_BY_ROLE,
    Permission,
    Role,
    view_for,
)


def user(*roles: str, scopes: tuple[str, ...] = (DELEGATED_SCOPE,)) -> Principal:
    return Principal(oid="o", tid="t", azp="a", scopes=frozenset(scopes), roles=frozenset(roles))


def app(*roles: str) -> Principal:
    return Principal(oid="o", tid="t", azp="a", scopes=frozenset(), roles=frozenset(roles))


# route permission -> the single roles that may use it (the table in docs/authorization.md)
EXPECTED: dict[Permission, set[str]] = {
    PATIENT_CREATE: {"Clinician", "Intake"},
    PATIENT_READ: {"Clinician", "Intake", "Billing", "Researcher"},
    DOCUMENT_UPLOAD: {"Clinician", "Intake"},
    DOCUMENT_DOWNLOAD: {"Clinician"},
    LAB_RESULTS_INGEST: set(),
}


@pytest.mark.parametrize("permission", PERMISSIONS, ids=[p.name for p in PERMISSIONS])
@pytest.mark.parametrize("role", list(Role), ids=[str(r) for r in Role])
def test_permission_matrix_for_delegated_users(permission: Permission, role: Role) -> None:
    assert permission.allows(user(role)) == (role in EXPECTED[permission])


@pytest.mark.parametrize("permission", PERMISSIONS, ids=[p.name for p in PERMISSIONS])
@pytest.mark.parametrize("role", list(Role), ids=[str(r) for r in Role])
def test_permission_matrix_for_apps(permission: Permission, role: Role) -> None:
    expected = permission is LAB_RESULTS_INGEST and role is Role.LAB_SYSTEM
    assert permission.allows(app(role)) == expected


def test_a_user_role_without_the_delegated_scope_is_refused() -> None:
    assert not PATIENT_READ.allows(user("Clinician", scopes=("User.Read",)))
    with pytest.raises(Forbidden):
        PATIENT_READ.require(user("Clinician", scopes=("User.Read",)))


def test_view_precedence_is_deterministic() -> None:
    assert view_for(user("Researcher", "Clinician")) == "clinician"
    assert view_for(user("Billing", "Intake")) == "intake"
    assert view_for(user("Researcher", "Billing")) == "billing"
    assert view_for(user("Researcher")) == "researcher"
    assert set(VIEW_BY_ROLE.values()) == {"clinician", "intake", "billing", "researcher"}


@pytest.mark.parametrize("principal", [user(), user("LabSystem"), app("Clinician"), app("LabSystem")])
def test_no_view_without_a_user_role(principal: Principal) -> None:
    with pytest.raises(Forbidden):
        view_for(principal)
