"""Signing in and out of the console, and its landing page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from api.auth import events, sessions
from api.auth.schemas import LoginRequest
from api.deps import DbSession, ServicesDep, client_ip
from api.unit_of_work import settle_failure
from authflow.errors import AppError
from authflow.models import Session, User, utcnow

from .session import (
    LOGIN_COOKIE,
    SESSION_HOURS,
    ConsoleDep,
    check_origin,
    cookie_value,
    csrf_token,
    form_text,
    load_principal,
    login_csrf_token,
    may_use_console,
    new_login_nonce,
    read_form,
    session_id_from_cookie,
    set_login_cookie,
    set_session_cookie,
)
from .signed import same_token
from .web import (
    PREFIX,
    SESSION_COOKIE,
    ConsoleRoute,
    CsrfRefused,
    Flash,
    PageError,
    redirect,
    render,
    safe_next,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

NextParam = Annotated[str | None, Query(alias="next", max_length=2000)]


@router.get("/")
async def home(console: ConsoleDep) -> Response:
    """The first page the signed-in principal may see."""
    if not console.nav:
        raise PageError(403, "Your roles give you no page of this console.")
    return redirect(console.nav[0].path)


@router.get("/login")
async def login_page(
    request: Request, services: ServicesDep, db: DbSession, next_: NextParam = None
) -> Response:
    settings = services.settings
    target = safe_next(next_)
    session_id = session_id_from_cookie(settings, request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        principal = await load_principal(db, session_id)
        if principal is not None and may_use_console(principal.user):
            return redirect(target)
    return _login_form(request, target)


def _login_form(
    request: Request, target: str, *, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    settings = request.app.state.services.settings
    nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
    response = render(
        request,
        "login.html",
        {
            "csrf_token": login_csrf_token(settings, nonce),
            "next": target,
            "email": email,
            "error": error,
        },
        status=status,
    )
    set_login_cookie(response, request, nonce)
    return response


@router.post("/login")
async def login_submit(request: Request, services: ServicesDep, db: DbSession) -> Response:
    """The login use case checks the password, the throttle and the account's status;
    then only an ADMIN or a MANAGER gets a console session."""
    settings = services.settings
    check_origin(request)
    form = await read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    token = form_text(form, "csrf_token", max_length=128)
    if not nonce or not same_token(login_csrf_token(settings, nonce), token or None):
        raise CsrfRefused()
    target = safe_next(form_text(form, "next", max_length=2000))
    email = form_text(form, "email")
    try:
        body = LoginRequest.model_validate(
            {"email": email, "password": form_text(form, "password", max_length=1024)}
        )
    except ValidationError:
        return _login_form(
            request, target, email=email, error="Enter your email address and password.", status=422
        )
    try:
        pair = await sessions.login(
            db,
            services,
            body.email,
            body.password,
            ip=client_ip(request),
            agent=request.headers.get("user-agent"),
        )
    except AppError as exc:
        await settle_failure(db)
        return _login_form(request, target, email=email, error=exc.message, status=exc.status)

    claims = services.tokens.decode_access(pair.access_token)
    session = await db.get(Session, claims.session_id)
    user = await db.get(User, claims.user_id)
    assert session is not None  # opened by this transaction
    assert user is not None
    if not may_use_console(user):
        sessions.revoke(session, "console_refused")
        return render(request, "forbidden.html", {"email": user.email}, status=403)
    # A console session is shorter-lived than an API session (cookie and row alike).
    session.expires_at = min(session.expires_at, utcnow() + timedelta(hours=SESSION_HOURS))
    events.record(db, events.CONSOLE_SIGN_IN, user.id, user.id, client_ip(request))
    response = redirect(target)
    set_session_cookie(response, request, cookie_value(settings, session.id))
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request, services: ServicesDep, db: DbSession) -> Response:
    """Ends the session in the database (not only the cookie).  Needs the form token,
    but not the console roles: a member who lost them can still sign out."""
    settings = services.settings
    check_origin(request)
    form = await read_form(request)
    session_id = session_id_from_cookie(settings, request.cookies.get(SESSION_COOKIE))
    if session_id is not None:
        token = form_text(form, "csrf_token", max_length=128)
        if not same_token(csrf_token(settings, session_id), token or None):
            raise CsrfRefused()
        session = await db.get(Session, session_id)
        if session is not None:
            sessions.revoke(session, "logout")
    response = redirect(
        f"{PREFIX}/login", flash=Flash("ok", "You are signed out."), settings=settings
    )
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response
