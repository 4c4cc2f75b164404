"""Escalation guards shared by the admin use cases.

- Nobody below ADMIN can ban, delete or change the roles of an ADMIN, nor make one.
- Nobody can grant a permission they lack, directly or through a role.
- The last active ADMIN can be neither demoted, banned nor deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin.audit import Actor
from authflow.errors import Forbidden, LastAdmin, NotFound
from authflow.models import Role, User, UserRole, UserStatus
from authflow.policies import ADMIN_ROLE


def is_admin(user: User) -> bool:
    return any(role.name == ADMIN_ROLE for role in user.roles)


def ensure_may_manage(actor: Actor, target: User) -> None:
    if is_admin(target) and not is_admin(actor.principal.user):
        raise Forbidden("Only an ADMIN can ban, delete or change the roles of an ADMIN.")


def ensure_may_grant(actor: Actor, permissions: Iterable[str]) -> None:
    missing = sorted(set(permissions) - actor.permissions)
    if missing:
        raise Forbidden(f"You cannot grant permissions you lack: {', '.join(missing)}.")


def ensure_may_assign(actor: Actor, roles: Iterable[Role]) -> None:
    for role in roles:
        if role.name == ADMIN_ROLE and not is_admin(actor.principal.user):
            raise Forbidden("Only an ADMIN can make another ADMIN.")
        ensure_may_grant(actor, (p.name for p in role.permissions))


async def lock_user_for_change(db: AsyncSession, user_id: str) -> User:
    """Serialise every change that could remove an active ADMIN, then load the target.

    The ADMIN role row is the lock (PostgreSQL; SQLite transactions are serial anyway):
    two admins demoting each other at once cannot both succeed.  It is always taken
    before the user row, so these changes never deadlock one another.
    """
    await db.execute(select(Role.name).where(Role.name == ADMIN_ROLE).with_for_update())
    user = await db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound("No such user.")
    return user


async def active_admin_ids(db: AsyncSession) -> set[str]:
    rows = await db.scalars(
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_name == ADMIN_ROLE, User.status == UserStatus.ACTIVE)
    )
    return set(rows)


async def is_last_active_admin(db: AsyncSession, target: User) -> bool:
    """Whether banning, deleting or demoting ``target`` would leave no active ADMIN
    (the console then does not offer it)."""
    if target.status != UserStatus.ACTIVE or not is_admin(target):
        return False
    return await active_admin_ids(db) <= {target.id}


async def ensure_not_last_admin(db: AsyncSession, target: User) -> None:
    """Call before changing ``target`` (after ``lock_user_for_change``)."""
    if await is_last_active_admin(db, target):
        raise LastAdmin()
