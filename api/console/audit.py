"""The audit log, newest first: filters (action, actor, target, date), details in words,
actors and targets named (an email address, a role, the address a code went to).

The console filters with its own query here; ``api.admin.audit.list_entries`` stays the
JSON API's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import DbSession
from authflow.models import AuditEntry, OtpDelivery, Role, User

from .pages import PAGE_SIZE, Pager, choice, need, offset_param, text_param
from .session import ConsoleDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=320)]


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor: str | None = None  # part of an email address
    target: str | None = None  # part of an email address, or an id / role name
    since: date | None = None
    until: date | None = None

    def as_query(self) -> dict[str, str]:
        values = {
            "action": self.action,
            "actor": self.actor,
            "target": self.target,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in values.items() if v}


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a malformed date filters nothing rather than failing the page


def _users_matching(text: str) -> ColumnElement[bool]:
    pattern = f"%{text.lower()}%"
    return or_(func.lower(User.email).like(pattern), func.lower(User.full_name).like(pattern))


def _conditions(f: AuditFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.action:
        conditions.append(AuditEntry.action == f.action)
    if f.actor:
        actors = select(User.id).where(_users_matching(f.actor))
        conditions.append(AuditEntry.actor_id.in_(actors))
    if f.target:
        users = select(User.id).where(_users_matching(f.target))
        deliveries = select(OtpDelivery.id).where(
            func.lower(OtpDelivery.email).like(f"%{f.target.lower()}%")
        )
        conditions.append(
            or_(
                AuditEntry.target_id == f.target,
                AuditEntry.target_id.in_(users),
                AuditEntry.target_id.in_(deliveries),
            )
        )
    if f.since:
        conditions.append(AuditEntry.at >= datetime.combine(f.since, time.min, UTC))
    if f.until:
        conditions.append(AuditEntry.at < datetime.combine(f.until, time.min, UTC) + timedelta(1))
    return conditions


async def _names(db: AsyncSession, entries: list[AuditEntry]) -> dict[str, str]:
    """Id -> what a person recognises: a user's email, "code to <email>", a role."""
    ids = {i for e in entries for i in (e.actor_id, e.target_id) if i}
    for entry in entries:
        ids.update(v for v in (entry.detail or {}).values() if isinstance(v, str))
    if not ids:
        return {}
    names = dict((await db.execute(select(User.id, User.email).where(User.id.in_(ids)))).all())
    codes = await db.execute(
        select(OtpDelivery.id, OtpDelivery.email).where(OtpDelivery.id.in_(ids))
    )
    names |= {delivery_id: f"code to {email}" for delivery_id, email in codes.all()}
    roles = await db.scalars(select(Role.name).where(Role.name.in_(ids)))
    names |= {name: f"role {name}" for name in roles}
    return names


def readable(detail: Mapping[str, Any] | None, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """The detail as (label, value) pairs in words: ids named, lists joined, yes/no."""
    pairs = []
    for key, value in sorted((detail or {}).items()):
        label = key.replace("_", " ")
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list | tuple):
            text = ", ".join(names.get(str(v), str(v)) for v in value) or "none"
        elif value is None:
            text = "—"
        else:
            text = names.get(str(value), str(value))
        pairs.append((label, text))
    return pairs


@router.get("/audit")
async def audit_page(
    request: Request,
    console: ConsoleDep,
    db: DbSession,
    action: Text = None,
    actor: Text = None,
    target: Text = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    offset: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    need(console, "users:read")
    actions = sorted(await db.scalars(select(AuditEntry.action).distinct()))
    filters = AuditFilters(
        action=choice(action, actions),
        actor=text_param(actor),
        target=text_param(target),
        since=_day(since),
        until=_day(until),
    )
    conditions = _conditions(filters)
    start = offset_param(offset)
    total = await db.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
    entries = list(
        await db.scalars(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.id.desc())
            .limit(PAGE_SIZE)
            .offset(start)
        )
    )
    names = await _names(db, entries)
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "names": names,
            "readable": lambda d: readable(d, names),
            "actions": actions,
            "filters": filters,
            "total": total or 0,
            "pager": Pager(f"{PREFIX}/audit", filters.as_query(), start, total or 0),
        },
    )
