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

from authflow.courses.models import Enrollment, EnrollmentStatus
from authflow.db import Database
from authflow.errors import ServiceUnavailable
from workflows import search_attributes as sa
from workflows.enrollment import CertificateWorkflow, EnrollmentWorkflow
from workflows.inputs import EmailRoute
from workflows.learning_inputs import CertificateFlowInput, EnrollmentFlowInput

PREFIX = "learning."
ENROLLED = "learning.enrolled"
LEFT = "learning.left"
CERTIFICATE = "learning.certificate"
LESSONS = "learning.lessons_changed"


def enrollment_workflow_id(enrollment_id: str) -> str:
    return f"enrollment-{enrollment_id}"


class LearningFlows:
    """Runs the outbox's learning entries against Temporal."""

    def __init__(self, client: Client, db: Database, reminder_days: int, route: EmailRoute) -> None:
        self._client = client
        self._db = db
        self._reminder_days = reminder_days
        self._route = route

    async def run(self, action: str, args: dict[str, Any]) -> None:
        try:
            await self._run(action, args)
        except RPCError as exc:
            raise ServiceUnavailable("The workflow service is unavailable; try again.") from exc

    async def _run(self, action: str, args: dict[str, Any]) -> None:
        if action == ENROLLED:
            await self._start_enrollment(args)
        elif action == LEFT:
            await self._signal(enrollment_workflow_id(str(args["enrollment_id"])), "ended")
        elif action == CERTIFICATE:
            await self._certificate(args)
            await self._signal(enrollment_workflow_id(str(args["enrollment_id"])), "ended")
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
                await self._signal(enrollment_workflow_id(enrollment_id), "lessons_changed")

    async def _start_enrollment(self, args: dict[str, Any]) -> None:
        enrollment_id, course_id = str(args["enrollment_id"]), str(args["course_id"])
        user_id = str(args["user_id"])
        await self._client.start_workflow(
            EnrollmentWorkflow.run,
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
        certificate_id, user_id = str(args["certificate_id"]), str(args["user_id"])
        course_id = str(args["course_id"])
        await self._client.start_workflow(
            CertificateWorkflow.run,
            CertificateFlowInput(certificate_id, user_id, course_id, self._route),
            id=f"certificate-{certificate_id}",
            task_queue=self._route.task_queue,
            # One certificate, one email, whatever retries happen.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=_attributes("certificate", user_id, course_id),
        )

    async def _signal(self, workflow_id: str, name: str) -> None:
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
