"""The audit log: every admin action writes one entry in the transaction of its change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import Principal
from authflow.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who acts, with what, from where: what each admin use case needs to know."""

    principal: Principal
    ip: str | None

    @property
    def id(self) -> str:
        return self.principal.user.id

    @property
    def permissions(self) -> frozenset[str]:
        return self.principal.permissions


def record(
    db: AsyncSession, actor: Actor, action: str, target_id: str | None, **detail: Any
) -> AuditEntry:
    """Added to the session: committed (or rolled back) together with the change."""
    entry = AuditEntry(
        actor_id=actor.id, action=action, target_id=target_id, ip=actor.ip, detail=detail or None
    )
    db.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    since: datetime | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.action is not None:
            stmt = stmt.where(AuditEntry.action == self.action)
        if self.actor_id is not None:
            stmt = stmt.where(AuditEntry.actor_id == self.actor_id)
        if self.target_id is not None:
            stmt = stmt.where(AuditEntry.target_id == self.target_id)
        if self.since is not None:
            stmt = stmt.where(AuditEntry.at >= self.since)
        return stmt


async def list_entries(
    db: AsyncSession, *, limit: int, offset: int, filters: AuditFilters | None = None
) -> tuple[list[AuditEntry], int]:
    """Newest first (ids grow with every insert, timestamps can tie)."""
    filters = filters or AuditFilters()
    total = await db.scalar(filters.apply(select(func.count()).select_from(AuditEntry)))
    rows = await db.scalars(
        filters.apply(select(AuditEntry)).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def last_detail(
    db: AsyncSession, action: str, target_id: str, *, where: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The detail of the latest entry of this action on this target whose detail holds
    every item of ``where`` (empty if none among the recent ones)."""
    entries = await db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == action, AuditEntry.target_id == target_id)
        .order_by(AuditEntry.id.desc())
        .limit(50)
    )
    wanted = (where or {}).items()
    for entry in entries:
        detail = dict(entry.detail or {})
        if all(detail.get(key) == value for key, value in wanted):
            return detail
    return {}
