"""Dependencies of the learning routes: the optional caller, the acting ``Actor``, the
``If-Match`` version and list parameters."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Query
from fastapi.security import HTTPAuthorizationCredentials

from api.deps import (
    CurrentPrincipal,
    DbSession,
    Principal,
    ServicesDep,
    bearer_scheme,
    get_principal,
    require_permission,
)
from authflow.courses.service import CREATE, Actor
from authflow.errors import VersionConflict


async def optional_principal(
    services: ServicesDep,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal | None:
    """Anonymous callers are welcome; a token that is sent must still be valid (401)."""
    if credentials is None:
        return None
    return await get_principal(services, db, credentials)


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.user.id, principal.permissions)


async def current_actor(principal: CurrentPrincipal) -> Actor:
    return actor_of(principal)


async def maybe_actor(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Actor | None:
    return actor_of(principal) if principal is not None else None


async def creator_actor(
    principal: Annotated[Principal, Depends(require_permission(CREATE))],
) -> Actor:
    return actor_of(principal)


SignedIn = Annotated[Actor, Depends(current_actor)]
MaybeSignedIn = Annotated[Actor | None, Depends(maybe_actor)]
Creator = Annotated[Actor, Depends(creator_actor)]

_VERSION = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="The `version` you last read; a stale one answers 412 `version_conflict`.",
        ),
    ] = None,
) -> int | None:
    if value is None or value.strip() == "*":  # RFC 9110: "*" matches any version
        return None
    match = _VERSION.match(value)
    if match is None:
        raise VersionConflict("If-Match must carry the resource's version number.")
    return int(match.group(1))


# Search text: no control characters (a NUL would reach the database).
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
IfMatch = Annotated[int | None, Depends(if_match)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=r"^[A-Za-z0-9_=-]*$")]
