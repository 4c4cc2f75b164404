"""Roles, permissions and the roles of a user.

Nobody grants what they lack: a new role, a role's added permissions and a user's
added roles must all be covered by the actor's own permissions.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin import audit
from api.admin.audit import Actor
from api.admin.guards import (
    ensure_may_assign,
    ensure_may_grant,
    ensure_may_manage,
    ensure_not_last_admin,
    lock_user_for_change,
)
from authflow.errors import (
    NotFound,
    ReservedPermission,
    RoleExists,
    SeededRole,
    UnknownPermission,
    UnknownRole,
)
from authflow.models import Permission, Role, User
from authflow.policies import ADMIN_ROLE, ROLES_MANAGE


async def list_roles(db: AsyncSession) -> list[Role]:
    return list(await db.scalars(select(Role).order_by(Role.name)))


async def list_permissions(db: AsyncSession) -> list[Permission]:
    return list(await db.scalars(select(Permission).order_by(Permission.name)))


async def _permissions(db: AsyncSession, names: Sequence[str]) -> list[Permission]:
    wanted = set(names)
    found = list(await db.scalars(select(Permission).where(Permission.name.in_(wanted))))
    missing = wanted - {p.name for p in found}
    if missing:
        raise UnknownPermission(f"Unknown permission(s): {', '.join(sorted(missing))}.")
    return sorted(found, key=lambda p: p.name)


async def _roles(db: AsyncSession, names: Sequence[str]) -> list[Role]:
    wanted = set(names)
    found = list(await db.scalars(select(Role).where(Role.name.in_(wanted))))
    missing = wanted - {r.name for r in found}
    if missing:
        raise UnknownRole(f"Unknown role(s): {', '.join(sorted(missing))}.")
    return sorted(found, key=lambda r: r.name)


def _only_admin_manages_roles(permissions: Sequence[Permission]) -> None:
    """The contract: only ADMIN holds ``roles:manage`` (whoever holds it can grant
    themselves anything), so no other role may be given it."""
    if any(p.name == ROLES_MANAGE for p in permissions):
        raise ReservedPermission()


async def _role_for_update(db: AsyncSession, name: str) -> Role:
    role = await db.scalar(select(Role).where(Role.name == name).with_for_update())
    if role is None:
        raise NotFound("No such role.")
    return role


async def create_role(
    db: AsyncSession, actor: Actor, name: str, permission_names: Sequence[str]
) -> Role:
    permissions = await _permissions(db, permission_names)
    _only_admin_manages_roles(permissions)
    ensure_may_grant(actor, (p.name for p in permissions))
    # "admin" beside "ADMIN" would only confuse: names are unique whatever their case.
    clash = await db.scalar(select(Role.name).where(func.lower(Role.name) == name.lower()))
    if clash is not None:
        raise RoleExists(f"The role {clash!r} already exists.")
    role = Role(name=name, seeded=False, permissions=permissions)
    db.add(role)
    try:
        await db.flush()
    except IntegrityError as exc:  # created by a concurrent request
        raise RoleExists() from exc
    audit.record(db, actor, "role.create", name, permissions=[p.name for p in permissions])
    return role


async def set_role_permissions(
    db: AsyncSession, actor: Actor, name: str, permission_names: Sequence[str]
) -> Role:
    role = await _role_for_update(db, name)
    if role.name == ADMIN_ROLE:
        raise SeededRole("The ADMIN role always holds every permission.")
    permissions = await _permissions(db, permission_names)
    _only_admin_manages_roles(permissions)
    before = {p.name for p in role.permissions}
    after = {p.name for p in permissions}
    ensure_may_grant(actor, after - before)
    role.permissions = permissions
    audit.record(
        db, actor, "role.permissions", role.name,
        added=sorted(after - before), removed=sorted(before - after),
    )  # fmt: skip
    return role


async def delete_role(db: AsyncSession, actor: Actor, name: str) -> None:
    """The role leaves every user holding it (ON DELETE CASCADE)."""
    role = await _role_for_update(db, name)
    if role.seeded:
        raise SeededRole()
    audit.record(
        db, actor, "role.delete", role.name, permissions=sorted(p.name for p in role.permissions)
    )
    await db.delete(role)


async def set_user_roles(
    db: AsyncSession, actor: Actor, user_id: str, role_names: Sequence[str]
) -> User:
    user = await lock_user_for_change(db, user_id)
    ensure_may_manage(actor, user)
    roles = await _roles(db, role_names)
    before = {r.name for r in user.roles}
    after = {r.name for r in roles}
    ensure_may_assign(actor, (r for r in roles if r.name not in before))
    if ADMIN_ROLE in before and ADMIN_ROLE not in after:
        await ensure_not_last_admin(db, user)
    user.roles = roles
    audit.record(
        db, actor, "user.roles", user.id,
        added=sorted(after - before), removed=sorted(before - after),
    )  # fmt: skip
    return user
