"""A timed quiz attempt: a durable timer to its deadline, then the saved answers are
graded and the attempt closed (``submitted_by: "deadline"``).

The timer lives in Temporal, so the close happens whatever restarts in between (API,
worker, Temporal itself: an overdue timer fires when the server is back).  A learner's
submit signals ``submitted`` and the workflow ends early; a submit that races the timer
is harmless: the database grades an attempt once (a conditional UPDATE), and the
activity reports ``already_closed``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from authflow.policies import QUIZ_ATTEMPTS
    from authflow.quizzes.emails import QUIZ_RESULT
    from workflows.emails import send_email
    from workflows.inputs import (
        CLOSE_QUIZ_ATTEMPT,
        CloseAttemptInput,
        CloseAttemptOutcome,
        QuizAttemptInput,
    )

SUBMITTED_SIGNAL = "submitted"
# Marks runs that send the result email through the one email pipeline (histories
# recorded before it replay without).
RESULT_EMAIL_PATCH = "quiz-result-email-pipeline"


def quiz_attempt_workflow_id(attempt_id: str) -> str:
    return f"quiz-attempt-{attempt_id}"


@workflow.defn(name="QuizAttemptWorkflow")
class QuizAttemptWorkflow:
    def __init__(self) -> None:
        self._submitted = False

    @workflow.signal(name=SUBMITTED_SIGNAL)
    def submitted(self) -> None:
        self._submitted = True

    @workflow.run
    async def run(self, attempt: QuizAttemptInput) -> str:
        remaining = attempt.deadline_epoch - workflow.now().timestamp()
        if remaining > 0:
            try:
                await workflow.wait_condition(
                    lambda: self._submitted, timeout=timedelta(seconds=remaining)
                )
                return "submitted"
            except TimeoutError:
                pass
        policy = QUIZ_ATTEMPTS
        outcome: CloseAttemptOutcome = await workflow.execute_activity(
            CLOSE_QUIZ_ATTEMPT,
            CloseAttemptInput(attempt.attempt_id),
            result_type=CloseAttemptOutcome,
            task_queue=policy.task_queue,
            start_to_close_timeout=timedelta(seconds=policy.close_attempt_timeout_seconds),
            schedule_to_close_timeout=timedelta(seconds=policy.close_retry_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=policy.close_retry_initial_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=policy.close_retry_maximum_seconds),
                maximum_attempts=0,
            ),
        )
        if (
            outcome.status == "graded"
            and attempt.result_email is not None
            and workflow.patched(RESULT_EMAIL_PATCH)
        ):
            await self._send_result(attempt, outcome)
        return outcome.status

    @staticmethod
    async def _send_result(attempt: QuizAttemptInput, outcome: CloseAttemptOutcome) -> None:
        """The learner was not there when time ran out: tell them their result (a child
        SendEmailWorkflow on the email's queue, left to finish on its own)."""
        await send_email(
            QUIZ_RESULT, attempt.user_id, outcome.result or {}, key=attempt.attempt_id, wait=False
        )
