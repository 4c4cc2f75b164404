"""Temporal calls of the quiz routes, run after the commit by the unit of work
(``authflow.commands``: StartQuizAttempt, QuizSubmitted): start a timed attempt's
workflow (deterministic id from the attempt's), and tell it its learner submitted."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from authflow.commands import StartQuizAttempt
from authflow.errors import ServiceUnavailable
from authflow.policies import QUIZ_ATTEMPTS
from authflow.quizzes.emails import QUIZ_RESULT
from workflows import search_attributes as sa
from workflows.emails import email_route
from workflows.inputs import QuizAttemptInput
from workflows.quiz_attempt import SUBMITTED_SIGNAL, quiz_attempt_workflow_id

log = logging.getLogger(__name__)
KIND = "quiz_attempt"
WORKFLOW = "QuizAttemptWorkflow"


async def start_attempt_workflow(client: Client, command: StartQuizAttempt) -> None:
    """Start the deadline's workflow; an existing one (a retried dispatch) is kept.
    Started late (Temporal was down), it closes the attempt at once if the deadline
    passed meanwhile; the API refuses answers after the deadline in any case.

    Its first workflow task waits (on the server) until ``wake_before_deadline_seconds``
    before the deadline: none runs in the rush of a class starting together, and the
    timer it then sets starts at a quiet moment, so it ends at the deadline.  A
    "submitted" signal sent meanwhile waits for that task (a plain signal does not
    interrupt a start delay) and ends the workflow then."""
    wait = command.deadline_epoch - QUIZ_ATTEMPTS.wake_before_deadline_seconds - time.time()
    try:
        await client.start_workflow(
            WORKFLOW,
            QuizAttemptInput(
                command.attempt_id,
                command.deadline_epoch,
                user_id=command.user_id,
                course_id=command.course_id,
                result_email=email_route(QUIZ_RESULT),
            ),
            id=quiz_attempt_workflow_id(command.attempt_id),
            task_queue=QUIZ_ATTEMPTS.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            start_delay=timedelta(seconds=wait) if wait > 0 else None,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.KIND, KIND),
                    SearchAttributePair(sa.COURSE_ID, command.course_id),
                    SearchAttributePair(sa.USER_ID, command.user_id),
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
