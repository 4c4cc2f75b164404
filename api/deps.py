"""FastAPI dependencies: services, database session, the authenticated principal and
permission guards.  Admin routes declare their guard in their signature."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from api.services import Services
from api.unit_of_work import UnitOfWork
from authflow.errors import Forbidden, InvalidToken, NotAuthenticated
from authflow.models import Role, Session, User, UserStatus, utcnow

bearer_scheme = _bearer = HTTPBearer(
    auto_error=False, description="Access token from /api/v1/auth/login"
)


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a
    # thread hop per request that cost a fifth of the event loop's time in a spike.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_db_session(
    services: ServicesDep, background: BackgroundTasks
) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the route returns, rolled back on
    error (unless the use case asked to keep its writes, ``keep_when_failing``); the
    commands it queued are dispatched after the commit, never before or without it, and
    only once the answer is on its way: a request that queues a workflow call (a known
    address asking for a reset) must not answer later than one that queues none (an
    unknown address), or the time tells which is which (docs/security.md)."""
    async with services.db.sessionmaker() as session:
        uow = UnitOfWork(session)
        try:
            yield session
        except BaseException:
            if uow.commit_on_error:
                await session.commit()
            else:
                await session.rollback()
            raise
        await session.commit()
    if uow.entries:
        background.add_task(services.outbox.start_dispatch, list(uow.entries))


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: str
    permissions: frozenset[str]

    @property
    def role_names(self) -> list[str]:
        return sorted(role.name for role in self.user.roles)

    def has(self, permission: str) -> bool:
        return permission in self.permissions


def effective_permissions(user: User) -> frozenset[str]:
    return frozenset(p.name for role in user.roles for p in role.permissions)


async def get_principal(
    services: ServicesDep,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Checked on every request against the database: a logout, ban, deletion or
    password change takes effect on the very next request, not at token expiry."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated()
    claims = services.tokens.decode_access(credentials.credentials)
    principal = await principal_of_session(db, claims.session_id, user_id=claims.user_id)
    if principal is None:
        raise InvalidToken()
    return principal


# Built once, with bound parameters: building the statement on every request cost
# about as much CPU as running it.
_PRINCIPAL = (
    select(User, Session.revoked_at, Session.expires_at)
    .join(Session, Session.user_id == User.id)
    .where(Session.id == bindparam("session_id"))
    .options(joinedload(User.roles).joinedload(Role.permissions))
)
_PRINCIPAL_OF_USER = _PRINCIPAL.where(User.id == bindparam("user_id"))


async def principal_of_session(
    db: AsyncSession, session_id: str, *, user_id: str | None = None
) -> Principal | None:
    """The session's user, if the session is live and the user active (and, when
    ``user_id`` is given, the session is that user's); None otherwise.

    One statement: the session, its user, the user's roles and their permissions come
    joined (a query each was four round trips to the database on every request)."""
    if user_id is None:
        result = await db.execute(_PRINCIPAL, {"session_id": session_id})
    else:
        result = await db.execute(
            _PRINCIPAL_OF_USER, {"session_id": session_id, "user_id": user_id}
        )
    # Every row (one per permission) is read: they fill the joined collections.
    rows = result.unique().all()
    if not rows:
        return None
    user, revoked_at, expires_at = rows[0]
    if revoked_at is not None or expires_at <= utcnow() or user.status != UserStatus.ACTIVE:
        return None
    return Principal(user, session_id, effective_permissions(user))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_permission(permission: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A guard dependency; the permission is attached so the RBAC test can read it."""

    async def guard(principal: CurrentPrincipal) -> Principal:
        if not principal.has(permission):
            raise Forbidden(f"This action needs the permission {permission!r}.")
        return principal

    guard.required_permission = permission  # type: ignore[attr-defined]
    return guard


async def require_workflows(services: ServicesDep) -> None:
    """For routes whose work needs Temporal after the commit: 503 ``unavailable`` (with
    ``Retry-After``) before anything is written when it cannot be reached."""
    await services.gate.ensure()


def client_ip(request: Request) -> str | None:
    """The client's address: the connecting peer, or, when that peer is a trusted proxy
    (TRUSTED_PROXIES), the address it reports in ``X-Forwarded-For``."""
    return peer_address(request.scope, request.app.state.services.settings.trusted_proxy_set())


def request_scheme(request: Request) -> str:
    """``https`` when the request reached us over TLS: directly, or through a trusted
    proxy that says so in ``X-Forwarded-Proto`` (nobody else is believed)."""
    trusted = request.app.state.services.settings.trusted_proxy_set()
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto")
    if peer is not None and peer in trusted and forwarded:
        return forwarded.split(",")[0].strip().lower()
    return request.url.scheme


def peer_address(scope: Any, trusted: frozenset[str]) -> str | None:
    client = scope.get("client")
    peer: str | None = str(client[0]) if client else None
    if peer is None or peer not in trusted:
        return peer
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            # The proxy appends the address it saw last: the rightmost untrusted hop.
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if hop not in trusted:
                    return str(hop[:64])
    return peer


# Ids in paths are opaque strings to clients; ours are uuid4 ids, and course slugs of
# a-z, 0-9 and "-" (at most 120 characters, the column's width).  A path id of any
# other shape cannot exist, so it never reaches SQL (a NUL in text is an error in
# PostgreSQL) and the error handler answers it 404 ``not_found`` like any unknown id
# (``api/errors.py``: a path parameter that fails validation is not found).
PATH_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
PathId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=120,
        pattern=PATH_ID_PATTERN,
        description="An opaque id; one that does not exist, whatever its shape, answers 404.",
    ),
]
