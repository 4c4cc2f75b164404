"""Roles and their permissions (ADMIN only: the API's ``roles:manage``)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from api.admin import roles
from api.admin.audit import Actor
from api.admin.schemas import CreateRoleRequest, SetPermissionsRequest
from api.deps import DbSession, ServicesDep
from authflow.errors import NotFound
from authflow.models import Permission
from authflow.policies import ADMIN_ROLE

from .actions import act
from .pages import need
from .session import ConsoleDep, PostedDep, form_list, form_text
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
PAGE = f"{PREFIX}/roles"


@router.get("/roles")
async def roles_page(request: Request, console: ConsoleDep, db: DbSession) -> Response:
    need(console, "roles:manage")
    return render(
        request,
        "roles.html",
        {
            "roles": await roles.list_roles(db),
            "permissions": await roles.list_permissions(db),
            "admin_role": ADMIN_ROLE,
        },
    )


@router.post("/roles")
async def create_role(posted: PostedDep, db: DbSession, services: ServicesDep) -> Response:
    async def run(actor: Actor) -> str:
        body = CreateRoleRequest.model_validate(
            {
                "name": form_text(posted.form, "name", max_length=100).strip(),
                "permissions": form_list(posted.form, "permissions"),
            }
        )
        role = await roles.create_role(db, actor, body.name, body.permissions)
        return f"Role {role.name} created ({_listed(role.permissions)})."

    return await act(posted, db, services.settings, "roles:manage", run, back=PAGE)


@router.post("/roles/{name}/permissions")
async def set_permissions(
    name: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        body = SetPermissionsRequest.model_validate(
            {"permissions": form_list(posted.form, "permissions")}
        )
        role = await roles.set_role_permissions(db, actor, _name(name), body.permissions)
        return f"Permissions of {role.name}: {_listed(role.permissions)}."

    return await act(posted, db, services.settings, "roles:manage", run, back=PAGE)


@router.post("/roles/{name}/delete")
async def delete_role(
    name: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        await roles.delete_role(db, actor, _name(name))
        return f"Role {name} deleted."

    return await act(posted, db, services.settings, "roles:manage", run, back=PAGE)


def _name(name: str) -> str:
    if not name.isprintable() or len(name) > 64:
        raise NotFound("No such role.")
    return name


def _listed(permissions: Sequence[Permission]) -> str:
    return ", ".join(sorted(p.name for p in permissions)) or "no permissions"
