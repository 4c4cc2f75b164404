"""User administration use cases: list, read, ban, unban, approve, delete.

Each change is committed by the request's unit of work, with its audit entry, before
the answer is sent; workflow calls are queued on it and made after the commit, so the
workflow reads what was written.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin import audit
from api.admin.audit import Actor
from api.admin.guards import ensure_may_manage, ensure_not_last_admin, lock_user_for_change
from api.auth.sessions import revoke_sessions
from api.services import Services
from api.unit_of_work import after_commit
from authflow.commands import CancelUserFlows, SignalApproved
from authflow.errors import NotFound, NotPendingApproval
from authflow.models import User, UserStatus

# What an unbanned account returns to when the ban did not record it.
_RESTORABLE = {UserStatus.PENDING_VERIFICATION, UserStatus.PENDING_APPROVAL, UserStatus.ACTIVE}


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_users(
    db: AsyncSession, *, status: str | None, q: str | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Newest first; ``q`` matches a part of the email or the name, case-insensitively."""
    conditions = []
    if status:
        conditions.append(User.status == status)
    if q and q.strip():
        pattern = _like_pattern(q.strip())
        conditions.append(
            or_(User.email.ilike(pattern, escape="\\"), User.full_name.ilike(pattern, escape="\\"))
        )
    total = await db.scalar(select(func.count()).select_from(User).where(*conditions))
    rows = await db.scalars(
        select(User)
        .where(*conditions)
        .order_by(User.created_at.desc(), User.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def get_user(db: AsyncSession, user_id: str) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def ban(db: AsyncSession, actor: Actor, user_id: str) -> User:
    """Banned at once: every session is revoked in the same transaction."""
    user = await lock_user_for_change(db, user_id)
    ensure_may_manage(actor, user)
    previous = user.status
    if previous != UserStatus.BANNED:
        await ensure_not_last_admin(db, user)
        user.status = UserStatus.BANNED
        await revoke_sessions(db, user.id, reason="banned")
    audit.record(
        db, actor, "user.ban", user.id,
        previous_status=previous, changed=previous != UserStatus.BANNED,
    )  # fmt: skip
    return user


async def unban(db: AsyncSession, actor: Actor, user_id: str) -> User:
    """Back to the status the ban interrupted (an unverified or unapproved account
    stays so: unbanning is not a way round verification or approval)."""
    user = await lock_user_for_change(db, user_id)
    ensure_may_manage(actor, user)
    changed = user.status == UserStatus.BANNED
    if changed:
        user.status = await _status_before_ban(db, user)
    audit.record(db, actor, "user.unban", user.id, new_status=user.status, changed=changed)
    return user


async def _status_before_ban(db: AsyncSession, user: User) -> str:
    detail = await audit.last_detail(db, "user.ban", user.id, where={"changed": True})
    previous = detail.get("previous_status")
    if isinstance(previous, str) and previous in _RESTORABLE:
        return previous
    return UserStatus.ACTIVE if user.verified_at is not None else UserStatus.PENDING_VERIFICATION


async def approve(db: AsyncSession, services: Services, actor: Actor, user_id: str) -> User:
    """Activate; the waiting registration workflow sends the approval email (or, when
    none waits any more, a notification workflow does)."""
    user = await db.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("No such user.")
    if user.status != UserStatus.PENDING_APPROVAL:
        raise NotPendingApproval()
    user.status = UserStatus.ACTIVE
    audit.record(db, actor, "user.approve", user.id)
    after_commit(db, SignalApproved(user.id))
    return user


async def delete_user(db: AsyncSession, services: Services, actor: Actor, user_id: str) -> None:
    """Sessions, tokens, codes and roles go with the row (ON DELETE CASCADE); the
    address is free to register again; the user's running flows are cancelled."""
    user = await lock_user_for_change(db, user_id)
    ensure_may_manage(actor, user)
    await ensure_not_last_admin(db, user)
    audit.record(
        db, actor, "user.delete", user.id,
        status=user.status, roles=sorted(role.name for role in user.roles),
    )  # fmt: skip
    await db.delete(user)
    after_commit(db, CancelUserFlows(user_id))
