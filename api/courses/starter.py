"""The learning commands' workflow calls (start, signal), idempotent: the outbox runs them."""

from __future__ import annotations

from collections.abc import Coroutine
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
from authflow.commands import CertificateIssued, StartEnrollment
from authflow.courses import emails
from authflow.courses.models import Enrollment, EnrollmentStatus
from authflow.db import Database
from authflow.errors import ServiceUnavailable
from workflows import search_attributes as sa
from workflows.emails import email_route
from workflows.learning_inputs import EnrollmentFlowInput
from workflows.names import SignalName, WorkflowName


def enrollment_workflow_id(enrollment_id: str) -> str:
    return f"enrollment-{enrollment_id}"


class LearningFlows:
    """The workflow calls of the learning commands (``authflow.commands``)."""

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

    async def start_enrollment(self, command: StartEnrollment) -> None:
        await self._call(self._start_enrollment(command))

    async def end_enrollment(self, enrollment_id: str) -> None:
        await self._call(self._signal(enrollment_workflow_id(enrollment_id), SignalName.ENDED))

    async def certificate_issued(self, command: CertificateIssued) -> None:
        await self._call(self._certificate(command))
        await self.end_enrollment(command.enrollment_id)

    async def lessons_changed(self, course_id: str) -> None:
        async with self._db.session() as session:
            ids = (
                await session.scalars(
                    select(Enrollment.id).where(
                        Enrollment.course_id == course_id,
                        Enrollment.status == EnrollmentStatus.ACTIVE,
                        Enrollment.completed_at.is_(None),
                    )
                )
            ).all()
        for enrollment_id in ids:
            await self._call(
                self._signal(enrollment_workflow_id(enrollment_id), SignalName.LESSONS_CHANGED)
            )

    @staticmethod
    async def _call(call: Coroutine[Any, Any, None]) -> None:
        try:
            await call
        except RPCError as exc:
            raise ServiceUnavailable("The workflow service is unavailable; try again.") from exc

    async def _start_enrollment(self, command: StartEnrollment) -> None:
        await self._client.start_workflow(
            WorkflowName.ENROLLMENT,
            EnrollmentFlowInput(
                enrollment_id=command.enrollment_id,
                course_id=command.course_id,
                user_id=command.user_id,
                reminder_days=self._reminder_days,
                email=self._route,
            ),
            id=enrollment_workflow_id(command.enrollment_id),
            task_queue=self._route.task_queue,
            # A learner who left and came back gets a new run; a retried call, the same.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_attributes("enrollment", command.user_id, command.course_id),
        )

    async def _certificate(self, command: CertificateIssued) -> None:
        """The certificate email, once (keyed by the certificate), on the notification
        queue, linking to the public certificate page."""
        await self._flows.send_email(
            SendEmail(
                emails.COURSE_CERTIFICATE,
                command.user_id,
                key=command.certificate_id,
                context={
                    "course_title": command.course_title,
                    "certificate_url": f"{self._base_url}/certificates/{command.certificate_id}",
                },
                course_id=command.course_id,
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
