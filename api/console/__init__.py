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
console_router = APIRouter(include_in_schema=False)
for _module in (signin, users, roles, deliveries, courses, quizzes, announcements, audit, assets):
    console_router.include_router(_module.router)

__all__ = ["console_router"]
