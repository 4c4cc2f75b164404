"""Runs the outbox's learning entries against Temporal (start, signal), idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.flows import FlowStarter, SendEmail
from authflow.courses import emails
from authflow.courses.models import Enrollment, EnrollmentStatus
from authflow.db import Database
from authflow.errors import ServiceUnavailable
from workflows import search_attributes as sa
from workflows.emails import email_route
from workflows.learning_inputs import EnrollmentFlowInput
from workflows.names import SignalName, WorkflowName

PREFIX = "learning."
ENROLLED = "learning.enrolled"
LEFT = "learning.left"
CERTIFICATE = "learning.certificate"
LESSONS = "learning.lessons_changed"


def enrollment_workflow_id(enrollment_id: str) -> str:
    return f"enrollment-{enrollment_id}"


class LearningFlows:
    """Runs the outbox's learning entries against Temporal."""

    def __init__(
        self, client: Client, db: Database, flows: FlowStarter, *, reminder_days: int, base_url: str
    ) -> None:
        self._client = client
        self._db = db
        self._flows = flows
        self._reminder_days = reminder_days
        self._base_url = base_url.rstrip("/")
        # The enrollment workflow lives on its emails' queue (notification).
        self._route = email_route(emails.COURSE_ENROLLED)

    async def run(self, action: str, args: dict[str, Any]) -> None:
        try:
            await self._run(action, args)
        except RPCError as exc:
            raise ServiceUnavailable("The workflow service is unavailable; try again.") from exc

    async def _run(self, action: str, args: dict[str, Any]) -> None:
        if action == ENROLLED:
            await self._start_enrollment(args)
        elif action == LEFT:
            await self._signal(enrollment_workflow_id(str(args["enrollment_id"])), SignalName.ENDED)
        elif action == CERTIFICATE:
            await self._certificate(args)
            await self._signal(enrollment_workflow_id(str(args["enrollment_id"])), SignalName.ENDED)
        elif action == LESSONS:
            async with self._db.session() as session:
                ids = (
                    await session.scalars(
                        select(Enrollment.id).where(
                            Enrollment.course_id == str(args["course_id"]),
                            Enrollment.status == EnrollmentStatus.ACTIVE,
                            Enrollment.completed_at.is_(None),
                        )
                    )
                ).all()
            for enrollment_id in ids:
                await self._signal(
                    enrollment_workflow_id(enrollment_id), SignalName.LESSONS_CHANGED
                )

    async def _start_enrollment(self, args: dict[str, Any]) -> None:
        enrollment_id, course_id = str(args["enrollment_id"]), str(args["course_id"])
        user_id = str(args["user_id"])
        await self._client.start_workflow(
            WorkflowName.ENROLLMENT,
            EnrollmentFlowInput(
                enrollment_id=enrollment_id,
                course_id=course_id,
                user_id=user_id,
                reminder_days=self._reminder_days,
                email=self._route,
            ),
            id=enrollment_workflow_id(enrollment_id),
            task_queue=self._route.task_queue,
            # A learner who left and came back gets a new run; a retried call, the same.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_attributes("enrollment", user_id, course_id),
        )

    async def _certificate(self, args: dict[str, Any]) -> None:
        """The certificate email, once (keyed by the certificate), on the notification
        queue, linking to the public certificate page."""
        certificate_id = str(args["certificate_id"])
        await self._flows.send_email(
            SendEmail(
                emails.COURSE_CERTIFICATE,
                str(args["user_id"]),
                key=certificate_id,
                context={
                    "course_title": str(args.get("course_title", "")),
                    "certificate_url": f"{self._base_url}/certificates/{certificate_id}",
                },
            )
        )

    async def _signal(self, workflow_id: str, name: SignalName) -> None:
        try:
            await self._client.get_workflow_handle(workflow_id).signal(name)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


def _attributes(kind: str, user_id: str, course_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.KIND, kind),
            SearchAttributePair(sa.USER_ID, user_id),
            SearchAttributePair(sa.COURSE_ID, course_id),
        ]
    )
