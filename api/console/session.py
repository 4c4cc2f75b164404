"""Console sessions and CSRF tokens.

Signing in opens an ordinary database ``Session`` (the login use case).  The console's
cookie holds that session's id, signed with a key derived for the console; every
request checks it against the database exactly as a bearer token is checked: revoked,
expired, banned or deleted means signed out.  The cookie is HttpOnly, SameSite=Strict
and scoped to ``/admin``.

Every POST form carries ``csrf_token`` = HMAC(key "console-csrf", session id); a POST
whose token is missing or wrong, or whose Origin is another site, is refused (403).
The sign-in form, before any session exists, is bound the same way to a random
pre-session cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from api.admin.audit import Actor
from api.deps import (
    DbSession,
    Principal,
    ServicesDep,
    client_ip,
    principal_of_session,
    request_scheme,
)
from authflow.models import User
from authflow.settings import Settings

from .signed import mac, same_token, sign, unsign
from .web import PREFIX, SESSION_COOKIE, CsrfRefused, NoConsoleAccess, SignedOut

LOGIN_COOKIE = "authflow_console_login"
CONSOLE_ROLES = frozenset({"ADMIN", "MANAGER"})
SESSION_HOURS = 8


# -- the session cookie --------------------------------------------------------------------


def cookie_value(settings: Settings, session_id: str) -> str:
    return sign(settings, "console-session", session_id)


def session_id_from_cookie(settings: Settings, raw: str | None) -> str | None:
    return unsign(settings, "console-session", raw)


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_HOURS * 3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request_scheme(request) == "https",
    )


# -- CSRF ----------------------------------------------------------------------------------


def csrf_token(settings: Settings, session_id: str) -> str:
    return mac(settings, "console-csrf", f"session:{session_id}")


def login_csrf_token(settings: Settings, nonce: str) -> str:
    return mac(settings, "console-csrf", f"login:{nonce}")


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request_scheme(request) == "https",
    )


def check_origin(request: Request) -> None:
    """Defence in depth beside the token: a browser names the page's origin on a POST.

    A reverse proxy may rewrite Host; X-Forwarded-Host then names the public one (a
    cross-site form cannot set that header, so trusting it opens nothing).
    """
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return
    hosts = {request.headers.get("host")}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip())
    if urlsplit(origin).netloc not in hosts:
        raise CsrfRefused()


async def read_form(request: Request) -> FormData:
    try:
        return await request.form()
    except Exception as exc:  # malformed body: refuse like a missing token
        raise CsrfRefused() from exc


def form_text(form: FormData, name: str, *, max_length: int = 320) -> str:
    value = form.get(name)
    return value[:max_length] if isinstance(value, str) else ""


def form_list(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)][:64]


# -- who is signed in ----------------------------------------------------------------------


async def load_principal(db: AsyncSession, session_id: str) -> Principal | None:
    """The same checks as ``api.deps.get_principal`` makes for a bearer token."""
    return await principal_of_session(db, session_id)


def may_use_console(user: User) -> bool:
    return any(role.name in CONSOLE_ROLES for role in user.roles)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    permission: str


NAV = (
    NavItem(f"{PREFIX}/users", "Users", "users:read"),
    NavItem(f"{PREFIX}/roles", "Roles", "roles:manage"),
    NavItem(f"{PREFIX}/deliveries", "Deliveries", "otp:manage"),
    NavItem(f"{PREFIX}/live", "Live", "otp:manage"),
    NavItem(f"{PREFIX}/courses", "Courses", "courses:manage"),
    NavItem(f"{PREFIX}/announcements", "Announcements", "announcements:send"),
    NavItem(f"{PREFIX}/audit", "Audit log", "users:read"),
)


@dataclass(frozen=True)
class Console:
    """The signed-in principal and what the layout needs to draw around a page."""

    principal: Principal
    csrf_token: str
    ip: str | None

    @property
    def actor(self) -> Actor:
        return Actor(self.principal, self.ip)

    @property
    def nav(self) -> list[NavItem]:
        return [item for item in NAV if self.principal.has(item.permission)]

    def may(self, permission: str) -> bool:
        return self.principal.has(permission)


async def console_session(request: Request, services: ServicesDep, db: DbSession) -> Console:
    settings = services.settings
    session_id = session_id_from_cookie(settings, request.cookies.get(SESSION_COOKIE))
    if session_id is None:
        raise SignedOut()
    principal = await load_principal(db, session_id)
    if principal is None:
        raise SignedOut()
    console = Console(principal, csrf_token(settings, session_id), client_ip(request))
    request.state.console = console
    if not may_use_console(principal.user):
        raise NoConsoleAccess()
    return console


@dataclass(frozen=True)
class Posted:
    """A POST from a console page whose form token was checked."""

    console: Console
    form: FormData


async def console_post(
    request: Request, console: Annotated[Console, Depends(console_session)]
) -> Posted:
    check_origin(request)
    form = await read_form(request)
    if not same_token(console.csrf_token, form_text(form, "csrf_token", max_length=128) or None):
        raise CsrfRefused()
    return Posted(console, form)


ConsoleDep = Annotated[Console, Depends(console_session)]
PostedDep = Annotated[Posted, Depends(console_post)]
