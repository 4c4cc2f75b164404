"""The admin console: server-rendered pages under ``/admin`` for ADMINs and MANAGERs.

Every action calls the same use cases of ``api.admin`` as the JSON API, with the
signed-in principal, so the same permission and escalation checks apply.  See
``session`` for how signing in and CSRF tokens work.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import announcements, assets, audit, courses, deliveries, quizzes, roles, signin, users

# Each module's router carries the /admin prefix itself: FastAPI labels a request with the
# declaring router's route, so a prefix added here would be missing from the metrics' labels.
# The app includes them one by one (``api.app.ROUTERS``): a router nested in another is one
# more level that every request behind it is matched through.
console_routers: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (signin, users, roles, deliveries, courses, quizzes, announcements, audit, assets)
)

__all__ = ["console_routers"]
