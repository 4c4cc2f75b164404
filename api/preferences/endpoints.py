"""``/api/v1/me/email-preferences`` and the unsubscribe link of optional emails.

The unsubscribe routes take no login and no CSRF token: RFC 8058 one-click requires that a
mail client can POST to the link alone.  ``GET /unsubscribe`` only shows a page that asks
to confirm, so link scanners that follow every URL in an email unsubscribe nobody; it is
the link in an email's body.  Someone who opens the header's one-click URL in a browser
is sent to that page.  The pages answer a bad link with HTML to a browser and with the
contract's JSON error to any other client.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import CurrentPrincipal, DbSession, ServicesDep
from api.openapi import responses
from api.preferences.schemas import EmailPreferences, EmailPreferencesUpdate, Unsubscribed
from authflow.emails.unsubscribe import PAGE_PATH
from authflow.errors import InvalidUnsubscribeToken
from authflow.preferences import (
    UNSUBSCRIBE_KEY_LABEL,
    Preferences,
    get_preferences,
    set_preferences,
    unsubscribe,
)
from authflow.security.unsubscribe import read_token

router = APIRouter(tags=["email preferences"])
pages = APIRouter(tags=["email preferences"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "public"),
    autoescape=select_autoescape(default=True),
)
_LABELS = {
    "announcements": "announcements",
    "course_updates": "course updates",
    "reminders": "reminders",
}


@router.get(
    "/api/v1/me/email-preferences", response_model=EmailPreferences, responses=responses(401)
)
async def read_preferences(principal: CurrentPrincipal, db: DbSession) -> EmailPreferences:
    """The optional emails the caller receives."""
    return EmailPreferences(**asdict(await get_preferences(db, principal.user.id)))


@router.put(
    "/api/v1/me/email-preferences", response_model=EmailPreferences, responses=responses(401, 422)
)
async def write_preferences(
    body: EmailPreferencesUpdate, principal: CurrentPrincipal, db: DbSession
) -> EmailPreferences:
    """Turn optional emails on or off; fields left out keep their value."""
    current = asdict(await get_preferences(db, principal.user.id))
    wanted = {name: value for name, value in body.model_dump().items() if value is not None}
    saved = await set_preferences(db, principal.user.id, Preferences(**(current | wanted)))
    return EmailPreferences(**asdict(saved))


@router.post("/api/v1/unsubscribe", response_model=Unsubscribed, responses=responses(400))
async def one_click_unsubscribe(
    db: DbSession, services: ServicesDep, token: str = Query("")
) -> Unsubscribed:
    """RFC 8058 one-click unsubscribe: whoever holds the email's link turns that kind off.
    Any body (`List-Unsubscribe=One-Click`) is accepted and ignored."""
    category = await unsubscribe(db, _key(services), token)
    if category is None:
        raise InvalidUnsubscribeToken()
    return Unsubscribed(category=category.value)


@router.get(
    "/api/v1/unsubscribe",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "To the page that confirms (`GET /unsubscribe`)"}},
)
async def one_click_link_opened(token: str = Query("")) -> RedirectResponse:
    """The one-click URL opened in a browser: nothing changes; the page that confirms."""
    return RedirectResponse(f"{PAGE_PATH}?{urlencode({'token': token})}", status_code=303)


_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "The page"},
    **responses(400),
}


@pages.get(PAGE_PATH, response_class=HTMLResponse, responses=_PAGE_RESPONSES)
async def confirm_page(request: Request, services: ServicesDep, token: str = Query("")) -> Response:
    """The body's unsubscribe link: a page that asks to confirm (opening it changes
    nothing).  A bad link: 400, an HTML page for a browser, `invalid_token` otherwise."""
    found = read_token(_key(services), token)
    if found is None:
        return _invalid(request)
    return _page(200, valid=True, token=token, label=_LABELS[found[1].value])


@pages.post(PAGE_PATH, response_class=HTMLResponse, responses=_PAGE_RESPONSES)
async def confirm(
    request: Request, db: DbSession, services: ServicesDep, token: str = Query("")
) -> Response:
    """The page's button: turns that kind of email off."""
    category = await unsubscribe(db, _key(services), token)
    if category is None:
        return _invalid(request)
    return _page(200, valid=True, token="", label=_LABELS[category.value], done=True)


def _invalid(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return _page(400, valid=False, token="", label="")
    raise InvalidUnsubscribeToken()


def _key(services: ServicesDep) -> bytes:
    return services.settings.derived_key(UNSUBSCRIBE_KEY_LABEL)


def _page(status: int, **context: object) -> HTMLResponse:
    html = _templates.get_template("unsubscribe.html").render({"done": False, **context})
    return HTMLResponse(html, status_code=status)
