"""Activities of the learning workflows: read an enrollment's plan, send a learning email.

Learning emails are few (a welcome, drip notices, reminders, a certificate), so they are
built with the standard library's ``EmailMessage`` from templates in files
(``authflow/templates/learning``: subject, text, HTML); only the per-code path keeps the
hand-written MIME writer whose cost was measured.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mailer import DeliveryError, Mailer, PermanentDeliveryError
from activities.pacer import Pacer
from activities.templates import OutgoingEmail
from authflow import metrics
from authflow.courses.models import Certificate, Course, Enrollment, EnrollmentStatus, Lesson
from authflow.db import Database
from authflow.models import User
from workflows.learning_inputs import (
    EnrollmentPlan,
    EnrollmentPlanRequest,
    LearningEmail,
    LearningEmailInput,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "authflow" / "templates" / "learning"
# Kinds a user may turn off: they carry List-Unsubscribe (RFC 2369 / 8058).
OPTIONAL = {LearningEmail.LESSON_OPENED: "course_updates", LearningEmail.REMINDER: "reminders"}
KIND = "notification"


@dataclass(frozen=True)
class LearningMail:
    subject: str
    text: str
    html: str
    headers: dict[str, str]


class LearningEmails:
    """Renders the learning templates; ``base_url`` is PUBLIC_BASE_URL."""

    def __init__(self, base_url: str, templates: Path = TEMPLATES) -> None:
        self.base_url = base_url.rstrip("/")
        self.env = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, template: str, **context: object) -> LearningMail:
        context = {"base_url": self.base_url, **context}
        subject = " ".join(self.env.get_template(f"{template}.subject").render(context).split())
        headers: dict[str, str] = {}
        if template in OPTIONAL:
            url = str(context["unsubscribe_url"])
            headers["List-Unsubscribe"] = f"<{url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return LearningMail(
            subject=subject,
            text=self.env.get_template(f"{template}.txt").render(context),
            html=self.env.get_template(f"{template}.html").render(context),
            headers=headers,
        )

    def unsubscribe_url(self, preference: str) -> str:
        # The preferences page (issue: announcements) takes it from here; until then it
        # names the preference to turn off.
        return f"{self.base_url}/unsubscribe?preference={preference}"


def build_email(
    mail: LearningMail, *, sender: str, recipient: str, name: str | None
) -> OutgoingEmail:
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = mail.subject
    message["From"] = sender
    message["To"] = formataddr((name or "", recipient))
    message["Date"] = formatdate(usegmt=True)
    envelope_from = parseaddr(sender)[1]
    message["Message-ID"] = make_msgid(domain=envelope_from.rpartition("@")[2] or "authflow")
    for header, value in mail.headers.items():
        message[header] = value
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return OutgoingEmail(envelope_from, recipient, message.as_bytes())


class LearningActivities:
    def __init__(
        self, db: Database, mailer: Mailer, pacer: Pacer, *, sender: str, base_url: str
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._pacer = pacer
        self._sender = sender
        self._emails = LearningEmails(base_url)

    @activity.defn(name="load_enrollment_plan")
    async def load_enrollment_plan(self, request: EnrollmentPlanRequest) -> EnrollmentPlan:
        async with self._db.session() as session:
            enrollment = await session.get(Enrollment, request.enrollment_id)
            if enrollment is None:
                return EnrollmentPlan(False, False, 0.0, 0.0, [])
            days = await session.scalars(
                select(Lesson.release_after_days)
                .where(Lesson.course_id == enrollment.course_id)
                .distinct()
            )
            return EnrollmentPlan(
                active=enrollment.status == EnrollmentStatus.ACTIVE,
                completed=enrollment.completed_at is not None,
                enrolled_at_epoch=enrollment.enrolled_at.timestamp(),
                last_activity_epoch=enrollment.last_activity_at.timestamp(),
                release_days=sorted(set(days.all())),
            )

    @activity.defn(name="send_learning_email")
    async def send_learning_email(self, request: LearningEmailInput) -> str:
        prepared = await self._prepare(request)
        if prepared is None:
            return "skipped"
        outgoing = prepared
        queue = activity.info().task_queue
        started = await self._pacer.acquire(queue)
        try:
            await self._mailer.send(outgoing)
        except DeliveryError as exc:
            metrics.EMAILS_FAILED.labels(KIND, "learning").inc()
            raise ApplicationError(
                str(exc),
                type=type(exc).__name__,
                non_retryable=isinstance(exc, PermanentDeliveryError),
            ) from None
        metrics.record_delivered(KIND, started, activity.info().attempt)
        return "delivered"

    async def _prepare(self, request: LearningEmailInput) -> OutgoingEmail | None:
        async with self._db.session() as session:
            user = (
                await session.execute(
                    select(User.email, User.full_name).where(User.id == request.user_id)
                )
            ).first()
            course = await session.get(Course, request.course_id)
            if user is None or course is None:
                return None
            context: dict[str, object] = {
                "name": user.full_name or "there",
                "course": {"title": course.title, "slug": course.slug},
                "course_url": f"{self._emails.base_url}/courses/{course.slug}",
            }
            if request.template in OPTIONAL:
                context["unsubscribe_url"] = self._emails.unsubscribe_url(
                    OPTIONAL[request.template]
                )
            if request.template == LearningEmail.LESSON_OPENED:
                context["lessons"] = list(
                    await session.scalars(
                        select(Lesson.title)
                        .where(
                            Lesson.course_id == course.id,
                            Lesson.release_after_days == request.day,
                        )
                        .order_by(Lesson.position)
                    )
                )
            if request.template == LearningEmail.CERTIFICATE:
                certificate = await session.get(Certificate, request.certificate_id)
                if certificate is None:
                    return None
                context["certificate_url"] = (
                    f"{self._emails.base_url}/certificates/{certificate.id}"
                )
        mail = self._emails.render(request.template, **context)
        return build_email(mail, sender=self._sender, recipient=user.email, name=user.full_name)
