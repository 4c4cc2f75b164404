"""The audit log, newest first, with the actors' email addresses."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from api.admin import audit
from api.deps import DbSession
from authflow.models import User

from .pages import PAGE_SIZE, Pager, need, offset_param
from .session import ConsoleDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)


@router.get("/audit")
async def audit_page(
    request: Request,
    console: ConsoleDep,
    db: DbSession,
    offset: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    need(console, "users:read")
    start = offset_param(offset)
    entries, total = await audit.list_entries(db, limit=PAGE_SIZE, offset=start)
    ids = {i for e in entries for i in (e.actor_id, e.target_id) if i}
    rows = await db.execute(select(User.id, User.email).where(User.id.in_(ids)))
    emails = dict(rows.tuples().all())
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "emails": emails,
            "detail": lambda d: json.dumps(d, sort_keys=True, default=str) if d else "",
            "total": total,
            "pager": Pager(f"{PREFIX}/audit", {}, start, total),
        },
    )
