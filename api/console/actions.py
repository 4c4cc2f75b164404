"""How a console form runs an admin use case: the API's own permission guard, then the
use case of ``api.admin`` with the signed-in principal as the actor, then a redirect
back to the page with a flash message saying what happened (or why not)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin.audit import Actor
from api.deps import require_permission
from authflow.errors import AppError, NotFound
from authflow.settings import Settings

from .session import Posted, form_text
from .web import Flash, redirect, safe_next

# Ids are UUIDs: anything else (a NUL, a slash) never reaches the database.
_RECORD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def record_id(value: str, what: str = "record") -> str:
    if not _RECORD_ID.match(value):
        raise NotFound(f"No such {what}.")
    return value


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ())) or "input"
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "The form is not valid."


async def act(
    posted: Posted,
    db: AsyncSession,
    settings: Settings,
    permission: str,
    action: Callable[[Actor], Awaitable[str]],
    *,
    back: str,
    after: str | None = None,
) -> Response:
    """Run ``action`` as the signed-in actor; its text is the success message.

    Either way the browser returns to the form's ``back`` page (or ``back``); on
    success to ``after`` instead, when given (a deleted record's page is gone).
    """
    target = safe_next(form_text(posted.form, "back", max_length=2000), back)
    try:
        await require_permission(permission)(posted.console.principal)
        message = await action(posted.console.actor)
    except AppError as exc:
        await db.rollback()
        return redirect(target, flash=Flash("error", exc.message), settings=settings)
    except ValidationError as exc:
        await db.rollback()
        return redirect(target, flash=Flash("error", validation_message(exc)), settings=settings)
    return redirect(after or target, flash=Flash("ok", message), settings=settings)
