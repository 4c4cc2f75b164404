"""After-commit workflow calls of the learning API: typed commands on the request's
unit of work (``api.unit_of_work``), dispatched through the outbox once it committed;
if Temporal is down the relay retries, so nothing is lost, and the calls are idempotent
(deterministic workflow ids, ``api.courses.starter``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.unit_of_work import after_commit
from authflow.commands import CertificateIssued, EndEnrollment, LessonsChanged, StartEnrollment
from authflow.courses import progress as learning
from authflow.courses.models import Certificate, Enrollment


def enrollment_activated(db: AsyncSession, enrollment: Enrollment) -> None:
    after_commit(db, StartEnrollment(enrollment.user_id, enrollment.id, enrollment.course_id))


def enrollment_left(db: AsyncSession, enrollment: Enrollment) -> None:
    after_commit(db, EndEnrollment(enrollment.user_id, enrollment.id))


def certificate_issued(db: AsyncSession, certificate: Certificate) -> None:
    """Sends the certificate email and ends the enrollment's workflow.  Also the quiz
    domain's call, after a passed quiz completed the course."""
    after_commit(db, certificate_command(certificate))


def certificate_command(certificate: Certificate) -> CertificateIssued:
    return CertificateIssued(
        user_id=certificate.user_id,
        certificate_id=certificate.id,
        course_id=certificate.course_id,
        course_title=certificate.course_title,
        enrollment_id=certificate.enrollment_id,
    )


def lessons_changed(db: AsyncSession, course_id: str) -> None:
    """Wake the course's enrollment workflows: the drip schedule may have moved."""
    after_commit(db, LessonsChanged(course_id))


async def lessons_deleted(db: AsyncSession, course_id: str) -> None:
    """After lessons were deleted: the learners who have now completed every remaining
    lesson complete the course, each certificate emailed once (as after the last
    lesson's ``complete``), and the enrollment workflows wake (``lessons_changed``)."""
    for certificate in await learning.complete_finished_enrollments(db, course_id):
        certificate_issued(db, certificate)
    lessons_changed(db, course_id)
