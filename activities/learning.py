"""Activities of the learning workflows: read an enrollment's plan when its workflow
wakes.  Its emails go through the one email pipeline (``workflows.emails.send_email``);
their declarations are in ``authflow.courses.emails``."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from authflow.courses.emails import INACTIVITY_REMINDER  # declares the learning emails
from authflow.courses.models import Course, Enrollment, EnrollmentStatus, Lesson
from authflow.db import Database
from authflow.models import EmailDelivery
from workflows.emails import email_workflow_id
from workflows.learning_inputs import EnrollmentPlan, EnrollmentPlanRequest
from workflows.names import ActivityName


class LearningActivities:
    def __init__(self, db: Database, public_base_url: str = "") -> None:
        self._db = db
        self._base_url = public_base_url.rstrip("/")

    @activity.defn(name=ActivityName.LOAD_ENROLLMENT_PLAN)
    async def load_enrollment_plan(self, request: EnrollmentPlanRequest) -> EnrollmentPlan:
        async with self._db.session() as session:
            enrollment = await session.get(Enrollment, request.enrollment_id)
            course = await session.get(Course, enrollment.course_id) if enrollment else None
            if enrollment is None or course is None:
                return EnrollmentPlan(False, False, 0.0, 0.0)
            titles: dict[str, list[str]] = {}
            for day, title in await session.execute(
                select(Lesson.release_after_days, Lesson.title)
                .where(Lesson.course_id == course.id)
                .order_by(Lesson.release_after_days, Lesson.position)
            ):
                titles.setdefault(str(day), []).append(title)
            return EnrollmentPlan(
                active=enrollment.status == EnrollmentStatus.ACTIVE,
                completed=enrollment.completed_at is not None,
                enrolled_at_epoch=enrollment.enrolled_at.timestamp(),
                last_activity_epoch=enrollment.last_activity_at.timestamp(),
                release_days=sorted(int(day) for day in titles),
                course_title=course.title,
                course_url=f"{self._base_url}/courses/{course.slug}",
                titles_by_day={day: ", ".join(names) for day, names in titles.items()},
                reminders_sent=await reminders_sent(session, enrollment),
            )


async def reminders_sent(session: AsyncSession, enrollment: Enrollment) -> int:
    """The reminder emails of every run of this enrollment: each has a delivery record,
    whose workflow id starts with the enrollment's (``EnrollmentWorkflow._email``)."""
    prefix = email_workflow_id(INACTIVITY_REMINDER, enrollment.user_id, f"{enrollment.id}-")
    count = await session.scalar(
        select(func.count())
        .select_from(EmailDelivery)
        .where(
            EmailDelivery.user_id == enrollment.user_id,
            EmailDelivery.email_type == INACTIVITY_REMINDER.name,
            EmailDelivery.workflow_id.startswith(prefix, autoescape=True),
        )
    )
    return int(count or 0)
