"""Bodies of the email-preference routes."""

from __future__ import annotations

from api.schemas_common import StrictModel


class EmailPreferences(StrictModel):
    """Which optional emails the user receives (all on by default). Codes and security
    notices are not listed: they can never be turned off."""

    announcements: bool = True
    course_updates: bool = True
    reminders: bool = True


class EmailPreferencesUpdate(StrictModel):
    """Fields left out keep their current value."""

    announcements: bool | None = None
    course_updates: bool | None = None
    reminders: bool | None = None


class Unsubscribed(StrictModel):
    status: str = "unsubscribed"
    category: str
