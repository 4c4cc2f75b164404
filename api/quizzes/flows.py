"""Temporal calls of the quiz routes: start a timed attempt's workflow (deterministic id
from the attempt's), and tell it its learner submitted."""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from authflow.errors import ServiceUnavailable
from authflow.policies import QUIZ_ATTEMPTS
from authflow.quizzes.models import QuizAttempt
from workflows import search_attributes as sa
from workflows.inputs import EmailRoute, QuizAttemptInput
from workflows.quiz_attempt import (
    SUBMITTED_SIGNAL,
    QuizAttemptWorkflow,
    quiz_attempt_workflow_id,
)

log = logging.getLogger(__name__)
KIND = "quiz_attempt"


async def start_attempt_workflow(
    client: Client, attempt: QuizAttempt, course_id: str, result_email: EmailRoute
) -> None:
    """Start the deadline's workflow; an existing one (a retried request) is kept."""
    assert attempt.deadline is not None
    try:
        await client.start_workflow(
            QuizAttemptWorkflow.run,
            QuizAttemptInput(
                attempt.id,
                attempt.deadline.timestamp(),
                user_id=attempt.user_id,
                course_id=course_id,
                result_email=result_email,
            ),
            id=quiz_attempt_workflow_id(attempt.id),
            task_queue=QUIZ_ATTEMPTS.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.KIND, KIND),
                    SearchAttributePair(sa.COURSE_ID, course_id),
                    SearchAttributePair(sa.USER_ID, attempt.user_id),
                ]
            ),
        )
    except RPCError as exc:
        raise ServiceUnavailable("The workflow service is unavailable; try again.") from exc


async def signal_submitted(client: Client, attempt_id: str) -> None:
    """Best effort: without it the workflow wakes at the deadline and finds the attempt
    closed, which is the same outcome later."""
    try:
        await client.get_workflow_handle(quiz_attempt_workflow_id(attempt_id)).signal(
            SUBMITTED_SIGNAL
        )
    except RPCError as exc:
        log.info("submitted signal not delivered (%s): the deadline will find it closed", exc)
