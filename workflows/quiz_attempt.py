"""A timed quiz attempt: a durable timer to its deadline, then the saved answers are
graded and the attempt closed (``submitted_by: "deadline"``).

The timer lives in Temporal, so the close happens whatever restarts in between (API,
worker, Temporal itself: an overdue timer fires when the server is back).  A learner's
submit signals ``submitted`` and the workflow ends early; a submit that races the timer
is harmless: the database grades an attempt once (a conditional UPDATE), and the
activity reports ``already_closed`` when the learner's submit won.

Runs since ``LOCAL_CLOSE_PATCH`` close the attempt in a local activity: the worker that
handles the timer's workflow task runs the close within it, instead of scheduling an
activity task through the server and waiting for a poller to take it (at 150 deadlines
in one second, that round trip was most of a close's delay: docs/benchmarks.md,
"Quizzes").  A close that keeps failing (the database is down) goes on as the
server-scheduled activity older runs use, retried for as long as before.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import exceptions, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from authflow.policies import QUIZ_ATTEMPTS, QuizAttemptPolicy
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
# Marks runs that close their attempt in a local activity first; they send the result
# email too (one marker instead of two: histories recorded before it replay without).
LOCAL_CLOSE_PATCH = "quiz-close-local-activity"


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
        if workflow.patched(LOCAL_CLOSE_PATCH):
            outcome = await self._close_here(attempt)
            sends_result = True
        else:
            outcome = await self._close(attempt)
            sends_result = False
        if (
            outcome.status == "graded"
            and attempt.result_email is not None
            and (sends_result or workflow.patched(RESULT_EMAIL_PATCH))
        ):
            await self._send_result(attempt, outcome)
        return outcome.status

    @staticmethod
    async def _close_here(attempt: QuizAttemptInput) -> CloseAttemptOutcome:
        """The close as a local activity, tried ``close_local_attempts`` times in the
        worker (about 3 s: a ``TooEarly`` clock difference, a short database outage);
        after that as the server-scheduled activity, for as long as ever (retried in
        the worker, a long outage would grow the history by a workflow task heartbeat
        every few seconds)."""
        policy = QUIZ_ATTEMPTS
        try:
            outcome: CloseAttemptOutcome = await workflow.execute_local_activity(
                CLOSE_QUIZ_ATTEMPT,
                CloseAttemptInput(attempt.attempt_id),
                result_type=CloseAttemptOutcome,
                start_to_close_timeout=timedelta(seconds=policy.close_attempt_timeout_seconds),
                retry_policy=_close_retries(policy, attempts=policy.close_local_attempts),
            )
            return outcome
        except (exceptions.ActivityError, exceptions.ApplicationError, exceptions.TimeoutError):
            # (Out of attempts, a local activity raises its last failure itself.)
            return await QuizAttemptWorkflow._close(attempt)

    @staticmethod
    async def _close(attempt: QuizAttemptInput) -> CloseAttemptOutcome:
        policy = QUIZ_ATTEMPTS
        outcome: CloseAttemptOutcome = await workflow.execute_activity(
            CLOSE_QUIZ_ATTEMPT,
            CloseAttemptInput(attempt.attempt_id),
            result_type=CloseAttemptOutcome,
            task_queue=policy.task_queue,
            start_to_close_timeout=timedelta(seconds=policy.close_attempt_timeout_seconds),
            schedule_to_close_timeout=timedelta(seconds=policy.close_retry_seconds),
            retry_policy=_close_retries(policy),
        )
        return outcome

    @staticmethod
    async def _send_result(attempt: QuizAttemptInput, outcome: CloseAttemptOutcome) -> None:
        """The learner was not there when time ran out: tell them their result (a child
        SendEmailWorkflow on the email's queue, left to finish on its own)."""
        await send_email(
            QUIZ_RESULT, attempt.user_id, outcome.result or {}, key=attempt.attempt_id, wait=False
        )


def _close_retries(policy: QuizAttemptPolicy, attempts: int = 0) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.close_retry_initial_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=policy.close_retry_maximum_seconds),
        maximum_attempts=attempts,
    )
