"""Email preferences: which optional kinds of email a user receives.

Announcements, course updates and reminders can be turned off, by the user's settings or
by the one-click link each such email carries; codes and security notices never can.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.emails import unsubscribe as emails_unsubscribe
from authflow.models import EmailPreference, User
from authflow.policies import PreferenceCategory
from authflow.security.unsubscribe import make_token, read_token

UNSUBSCRIBE_KEY_LABEL = "unsubscribe"


@dataclass(frozen=True)
class Preferences:
    announcements: bool = True
    course_updates: bool = True
    reminders: bool = True

    def allows(self, category: PreferenceCategory) -> bool:
        return bool(getattr(self, category.value))


async def get_preferences(db: AsyncSession, user_id: str) -> Preferences:
    row = await db.get(EmailPreference, user_id)
    if row is None:
        return Preferences()
    return Preferences(row.announcements, row.course_updates, row.reminders)


async def set_preferences(db: AsyncSession, user_id: str, wanted: Preferences) -> Preferences:
    row = await db.get(EmailPreference, user_id, with_for_update=True)
    if row is None:
        row = EmailPreference(user_id=user_id)
        db.add(row)
    row.announcements = wanted.announcements
    row.course_updates = wanted.course_updates
    row.reminders = wanted.reminders
    await db.flush()
    return wanted


async def opted_out(
    db: AsyncSession, user_ids: list[str], category: PreferenceCategory
) -> set[str]:
    """Which of these users turned this category off (one query for a whole page)."""
    if not user_ids:
        return set()
    column = getattr(EmailPreference, category.value)
    rows = await db.scalars(
        select(EmailPreference.user_id).where(
            EmailPreference.user_id.in_(user_ids), column.is_(False)
        )
    )
    return set(rows)


async def unsubscribe(db: AsyncSession, key: bytes, token: str) -> PreferenceCategory | None:
    """Turn off the token's category for its user; None if the token is not valid (or
    its user is gone).  Idempotent: a second click changes nothing."""
    found = read_token(key, token)
    if found is None:
        return None
    user_id, category = found
    if await db.get(User, user_id) is None:
        return None
    current = await get_preferences(db, user_id)
    await set_preferences(
        db,
        user_id,
        Preferences(**{**current.__dict__, category.value: False}),
    )
    return category


def unsubscribe_headers(
    base_url: str, key: bytes, user_id: str, category: PreferenceCategory
) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers of an email the user may turn off."""
    return emails_unsubscribe.unsubscribe_headers(base_url, make_token(key, user_id, category))
