"""Users: search and filter, one user's page, ban, unban, approve, delete, roles."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response

from api.admin import roles, users
from api.admin.audit import Actor
from api.admin.guards import active_admin_ids, is_last_active_admin
from api.deps import DbSession, ServicesDep
from authflow.models import UserStatus

from .actions import act, record_id
from .pages import PAGE_SIZE, Pager, need, offset_param, text_param
from .session import ConsoleDep, PostedDep, form_list
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=2000)]


@router.get("/users")
async def users_page(
    request: Request,
    console: ConsoleDep,
    db: DbSession,
    q: Text = None,
    status: Text = None,
    offset: Text = None,
) -> Response:
    need(console, "users:read")
    search = text_param(q)
    chosen = status if status in UserStatus.ALL else None
    start = offset_param(offset)
    items, total = await users.list_users(
        db, status=chosen, q=search, limit=PAGE_SIZE, offset=start
    )
    filters = {"q": search or "", "status": chosen or ""}
    admins = await active_admin_ids(db)
    return render(
        request,
        "users.html",
        {
            "users": items,
            # The API refuses to ban, delete or demote the last active ADMIN: not offered.
            "last_admin_id": next(iter(admins)) if len(admins) == 1 else None,
            "total": total,
            "q": search or "",
            "status": chosen or "",
            "statuses": UserStatus.ALL,
            "pager": Pager(f"{PREFIX}/users", filters, start, total),
            "back": _back(request),
        },
    )


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str, console: ConsoleDep, db: DbSession) -> Response:
    need(console, "users:read")
    user = await users.get_user(db, record_id(user_id, "user"))
    all_roles = await roles.list_roles(db) if console.may("roles:manage") else []
    return render(
        request,
        "user.html",
        {
            "user": user,
            "user_roles": {role.name for role in user.roles},
            "all_roles": all_roles,
            "last_admin": await is_last_active_admin(db, user),
            "back": _back(request),
        },
    )


def _back(request: Request) -> str:
    query = urlencode(sorted(request.query_params.items()))
    return request.url.path + (f"?{query}" if query else "")


# -- actions ----------------------------------------------------------------------------------


@router.post("/users/{user_id}/ban")
async def ban(user_id: str, posted: PostedDep, db: DbSession, services: ServicesDep) -> Response:
    async def run(actor: Actor) -> str:
        user = await users.ban(db, actor, record_id(user_id, "user"))
        return f"{user.email} is banned; their sessions have ended."

    return await act(posted, db, services.settings, "users:update", run, back=_user(user_id))


@router.post("/users/{user_id}/unban")
async def unban(user_id: str, posted: PostedDep, db: DbSession, services: ServicesDep) -> Response:
    async def run(actor: Actor) -> str:
        user = await users.unban(db, actor, record_id(user_id, "user"))
        return f"{user.email} is no longer banned (status: {user.status})."

    return await act(posted, db, services.settings, "users:update", run, back=_user(user_id))


@router.post("/users/{user_id}/approve")
async def approve(
    user_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        user = await users.approve(db, services, actor, record_id(user_id, "user"))
        return f"{user.email} is approved; an email tells them so."

    return await act(posted, db, services.settings, "users:approve", run, back=_user(user_id))


@router.post("/users/{user_id}/delete")
async def delete(user_id: str, posted: PostedDep, db: DbSession, services: ServicesDep) -> Response:
    async def run(actor: Actor) -> str:
        user = await users.get_user(db, record_id(user_id, "user"))
        email = user.email
        await users.delete_user(db, services, actor, user.id)
        return f"{email} is deleted."

    # Success goes to the list: the user's own page is gone.
    return await act(
        posted,
        db,
        services.settings,
        "users:delete",
        run,
        back=_user(user_id),
        after=f"{PREFIX}/users",
    )


@router.post("/users/{user_id}/roles")
async def set_roles(
    user_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    wanted = form_list(posted.form, "roles")

    async def run(actor: Actor) -> str:
        user = await roles.set_user_roles(db, actor, record_id(user_id, "user"), wanted)
        names = ", ".join(sorted(r.name for r in user.roles)) or "none"
        return f"Roles of {user.email}: {names}."

    return await act(posted, db, services.settings, "roles:manage", run, back=_user(user_id))


def _user(user_id: str) -> str:
    return f"{PREFIX}/users/{quote(user_id, safe='')}"
