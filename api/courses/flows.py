"""After-commit workflow calls of the learning API, through the transactional outbox.

Each use case adds its entry in the request's transaction, commits, then dispatches it
(``Outbox``); if Temporal is down the outbox relay retries, so nothing is lost, and the
calls are idempotent (deterministic workflow ids, ``api.courses.starter``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.courses.starter import CERTIFICATE, ENROLLED, LEFT, LESSONS
from api.services import Services
from authflow.courses.models import Certificate, Enrollment


async def _commit_and_dispatch(
    db: AsyncSession, services: Services, action: str, **args: Any
) -> None:
    entry = services.outbox.add(db, action, **args)
    await db.commit()
    await services.outbox.dispatch(entry)


async def enrollment_activated(
    db: AsyncSession, services: Services, enrollment: Enrollment
) -> None:
    await _commit_and_dispatch(
        db,
        services,
        ENROLLED,
        user_id=enrollment.user_id,
        enrollment_id=enrollment.id,
        course_id=enrollment.course_id,
    )


async def enrollment_left(db: AsyncSession, services: Services, enrollment: Enrollment) -> None:
    await _commit_and_dispatch(
        db, services, LEFT, user_id=enrollment.user_id, enrollment_id=enrollment.id
    )


async def certificate_issued(
    db: AsyncSession, services: Services, certificate: Certificate
) -> None:
    """Sends the certificate email and ends the enrollment's workflow.  Also the quiz
    domain's call, after a passed quiz completed the course."""
    await _commit_and_dispatch(
        db,
        services,
        CERTIFICATE,
        user_id=certificate.user_id,
        certificate_id=certificate.id,
        course_id=certificate.course_id,
        course_title=certificate.course_title,
        enrollment_id=certificate.enrollment_id,
    )


async def lessons_changed(db: AsyncSession, services: Services, course_id: str) -> None:
    """Wake the course's enrollment workflows: the drip schedule may have moved."""
    await _commit_and_dispatch(db, services, LESSONS, user_id="", course_id=course_id)
