"""``/api/v1/me/email-preferences`` and the unsubscribe link of optional emails.

The unsubscribe routes take no login and no CSRF token: RFC 8058 one-click requires that a
mail client can POST to the link alone.  ``GET /unsubscribe`` only shows a page that asks
to confirm, so link scanners that follow every URL in an email unsubscribe nobody.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import CurrentPrincipal, DbSession, ServicesDep
from api.openapi import responses
from api.preferences.schemas import EmailPreferences, EmailPreferencesUpdate, Unsubscribed
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
pages = APIRouter(include_in_schema=False)

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
    db: DbSession, services: ServicesDep, token: str = Query(max_length=512)
) -> Unsubscribed:
    """RFC 8058 one-click unsubscribe: whoever holds the email's link turns that kind off.
    Any body (`List-Unsubscribe=One-Click`) is accepted and ignored."""
    category = await unsubscribe(db, _key(services), token)
    if category is None:
        raise InvalidUnsubscribeToken()
    return Unsubscribed(category=category.value)


@pages.get("/unsubscribe", response_class=HTMLResponse)
async def confirm_page(
    services: ServicesDep, token: str = Query("", max_length=512)
) -> HTMLResponse:
    found = read_token(_key(services), token)
    if found is None:
        return _page(400, valid=False, token="", label="")
    return _page(200, valid=True, token=token, label=_LABELS[found[1].value])


@pages.post("/unsubscribe", response_class=HTMLResponse)
async def confirm(
    db: DbSession, services: ServicesDep, token: str = Query("", max_length=512)
) -> HTMLResponse:
    category = await unsubscribe(db, _key(services), token)
    if category is None:
        return _page(400, valid=False, token="", label="")
    return _page(200, valid=True, token="", label=_LABELS[category.value], done=True)


def _key(services: ServicesDep) -> bytes:
    return services.settings.derived_key(UNSUBSCRIBE_KEY_LABEL)


def _page(status: int, **context: object) -> HTMLResponse:
    html = _templates.get_template("unsubscribe.html").render({"done": False, **context})
    return HTMLResponse(html, status_code=status)
