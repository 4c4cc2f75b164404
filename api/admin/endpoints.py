"""Routes of ``/api/v1/admin``; every route declares its permission guard.

The guard (``require_permission``) reads the caller's roles from the database on every
request, so a changed role or a ban counts from the very next request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from api.admin import audit as audit_log
from api.admin import deliveries, roles, users
from api.admin.audit import Actor
from api.admin.schemas import (
    AuditAction,
    AuditOut,
    AuditPage,
    CreateRoleRequest,
    DeliveryOut,
    DeliveryPage,
    DeliveryStateFilter,
    EmailKindFilter,
    Limit,
    Offset,
    RecordId,
    ResendAccepted,
    RoleName,
    RoleOut,
    SearchText,
    SetPermissionsRequest,
    SetRolesRequest,
    UserOut,
    UserPage,
    UserStatusFilter,
)
from api.deps import (
    DbSession,
    Principal,
    ServicesDep,
    client_ip,
    require_permission,
    require_workflows,
)
from api.openapi import responses
from authflow.models import Role
from authflow.policies import ADMIN_RESEND_REPEAT_SECONDS

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


def _actor(permission: str) -> Any:
    """The guard of one permission, turned into the acting admin (who, with what, from where)."""
    guard = require_permission(permission)

    # A default, not an annotation: ``guard`` is local, a string annotation could not see it.
    async def actor(request: Request, principal: Principal = Depends(guard)) -> Actor:
        return Actor(principal, client_ip(request))

    return Depends(actor)


UsersRead = Annotated[Actor, _actor("users:read")]
UsersUpdate = Annotated[Actor, _actor("users:update")]
UsersDelete = Annotated[Actor, _actor("users:delete")]
UsersApprove = Annotated[Actor, _actor("users:approve")]
RolesManage = Annotated[Actor, _actor("roles:manage")]
OtpManage = Annotated[Actor, _actor("otp:manage")]

UserId = Annotated[RecordId, Path()]
DeliveryId = Annotated[RecordId, Path()]
RoleInPath = Annotated[RoleName, Path()]

_READ = responses(401, 403, 422)
_ONE = responses(401, 403, 404, 422)
_CHANGE = responses(401, 403, 404, 409, 422)


def _role_out(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name, permissions=sorted(p.name for p in role.permissions), seeded=role.seeded
    )


# -- users ---------------------------------------------------------------------------------


@router.get("/users", response_model=UserPage, responses=_READ)
async def list_users(
    _: UsersRead,
    db: DbSession,
    status_: Annotated[UserStatusFilter, Query(alias="status")] = None,
    q: Annotated[SearchText | None, Query(description="Part of the email or name")] = None,
    limit: Annotated[Limit, Query()] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> UserPage:
    """Newest first; `total` counts every match, whatever `limit` and `offset`."""
    items, total = await users.list_users(db, status=status_, q=q, limit=limit, offset=offset)
    return UserPage(items=[UserOut.of(u) for u in items], total=total)


@router.get("/users/{user_id}", response_model=UserOut, responses=_ONE)
async def get_user(user_id: UserId, _: UsersRead, db: DbSession) -> UserOut:
    return UserOut.of(await users.get_user(db, user_id))


@router.post("/users/{user_id}/ban", response_model=UserOut, responses=_CHANGE)
async def ban_user(user_id: UserId, actor: UsersUpdate, db: DbSession) -> UserOut:
    """Every session of the user ends at once; signing in answers 403 `banned`.
    Only an ADMIN can ban an ADMIN; the last active ADMIN cannot be banned (409 `last_admin`)."""
    return UserOut.of(await users.ban(db, actor, user_id))


@router.post("/users/{user_id}/unban", response_model=UserOut, responses=_CHANGE)
async def unban_user(user_id: UserId, actor: UsersUpdate, db: DbSession) -> UserOut:
    """Back to the status the ban interrupted (an account still waiting for verification
    or approval keeps waiting). Only an ADMIN can unban an ADMIN."""
    return UserOut.of(await users.unban(db, actor, user_id))


@router.post(
    "/users/{user_id}/approve",
    response_model=UserOut,
    responses={**_CHANGE, **responses(503)},
    dependencies=[Depends(require_workflows)],
)
async def approve_user(
    user_id: UserId, actor: UsersApprove, db: DbSession, services: ServicesDep
) -> UserOut:
    """Activate an account waiting for approval; an approval email follows.
    409 `not_pending_approval` for any other account."""
    return UserOut.of(await users.approve(db, services, actor, user_id))


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_CHANGE, **responses(503)},
    response_class=Response,
    dependencies=[Depends(require_workflows)],
)
async def delete_user(
    user_id: UserId, actor: UsersDelete, db: DbSession, services: ServicesDep
) -> Response:
    """Sessions, codes and roles go with the account; its running flows (an approval
    wait included) are cancelled; the address can register again."""
    await users.delete_user(db, services, actor, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/users/{user_id}/roles", response_model=UserOut, responses=_CHANGE)
async def set_user_roles(
    user_id: UserId, body: SetRolesRequest, actor: RolesManage, db: DbSession
) -> UserOut:
    """Replace the user's roles. 403 when a role added holds a permission you lack, when
    you are not an ADMIN and the user is one (or would become one); 409 `last_admin`
    when it would demote the last active ADMIN; 422 `unknown_role`."""
    return UserOut.of(await roles.set_user_roles(db, actor, user_id, body.roles))


# -- roles and permissions -------------------------------------------------------------------


@router.get("/roles", response_model=list[RoleOut], responses=responses(401, 403))
async def list_roles(_: RolesManage, db: DbSession) -> list[RoleOut]:
    return [_role_out(role) for role in await roles.list_roles(db)]


@router.post(
    "/roles",
    status_code=status.HTTP_201_CREATED,
    response_model=RoleOut,
    responses=responses(401, 403, 409, 422),
)
async def create_role(body: CreateRoleRequest, actor: RolesManage, db: DbSession) -> RoleOut:
    """403 when it would hold a permission you lack; 409 `role_exists` (names are unique
    whatever their case); 422 `unknown_permission`."""
    return _role_out(await roles.create_role(db, actor, body.name, body.permissions))


@router.put("/roles/{name}/permissions", response_model=RoleOut, responses=_CHANGE)
async def set_role_permissions(
    name: RoleInPath, body: SetPermissionsRequest, actor: RolesManage, db: DbSession
) -> RoleOut:
    """Replace the role's permissions; holders gain or lose them on their next request.
    403 when adding a permission you lack; 409 `seeded_role` for ADMIN (it always holds
    every permission); 422 `unknown_permission`."""
    return _role_out(await roles.set_role_permissions(db, actor, name, body.permissions))


@router.delete(
    "/roles/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_CHANGE,
    response_class=Response,
)
async def delete_role(name: RoleInPath, actor: RolesManage, db: DbSession) -> Response:
    """The role leaves every user holding it. Seeded roles cannot be deleted (409 `seeded_role`)."""
    await roles.delete_role(db, actor, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/permissions", response_model=list[str], responses=responses(401, 403))
async def list_permissions(_: RolesManage, db: DbSession) -> list[str]:
    """Every permission name."""
    return [p.name for p in await roles.list_permissions(db)]


# -- code deliveries ------------------------------------------------------------------------


@router.get("/otp", response_model=DeliveryPage, responses=_READ)
async def list_deliveries(
    _: OtpManage,
    db: DbSession,
    state: Annotated[DeliveryStateFilter, Query()] = None,
    kind: Annotated[EmailKindFilter, Query()] = None,
    limit: Annotated[Limit, Query()] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> DeliveryPage:
    """Newest first. The code itself is never shown."""
    items, total = await deliveries.list_deliveries(
        db, state=state, kind=kind, limit=limit, offset=offset
    )
    return DeliveryPage(items=[DeliveryOut.of(d) for d in items], total=total)


@router.post(
    "/otp/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResendAccepted,
    responses=responses(401, 403, 404, 409, 503),
    dependencies=[Depends(require_workflows)],
    description=(
        "A fresh code is emailed to the delivery's user and the old one stops working, even"
        " when the delivery failed for good or was replaced. Clicks on one delivery within"
        f" {ADMIN_RESEND_REPEAT_SECONDS:g} seconds of each other (a double click, two admins"
        " at once) are one re-send: each is answered 202 and one email goes out; a re-send"
        " after that emails a fresh code again. 409 `not_eligible` when the account can no"
        " longer receive this code."
    ),
)
async def resend_code(
    delivery_id: DeliveryId, actor: OtpManage, db: DbSession, services: ServicesDep
) -> ResendAccepted:
    await deliveries.resend(db, services, actor, delivery_id)
    return ResendAccepted()


# -- audit ------------------------------------------------------------------------------------


@router.get("/audit", response_model=AuditPage, responses=_READ)
async def list_audit(
    _: UsersRead,
    db: DbSession,
    action: Annotated[AuditAction | None, Query()] = None,
    actor_id: Annotated[RecordId | None, Query()] = None,
    target_id: Annotated[RecordId | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, with a time zone")] = None,
    limit: Annotated[Limit, Query()] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> AuditPage:
    """Newest first. Besides admin actions, the security events (`auth.login`,
    `auth.login_failed`, `auth.locked`, `auth.refresh_reuse`, `auth.password_changed`,
    `auth.password_reset`, `auth.otp_failed`, `console.sign_in`); never a secret."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    items, total = await audit_log.list_entries(
        db,
        limit=limit,
        offset=offset,
        filters=audit_log.AuditFilters(action, actor_id, target_id, since),
    )
    return AuditPage(items=[AuditOut.of(e) for e in items], total=total)
