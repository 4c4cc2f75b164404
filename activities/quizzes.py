"""The activity a timed attempt's workflow runs at the deadline: grade the saved answers
and close the attempt, in one transaction (a passed quiz completes its lesson in it),
which also reads what the result email shows.

On SQLite the closes that arrive together share a transaction (up to
``close_batch_size``): a class that started together runs out together, and with one
transaction a close (each waiting in turn for this process's one connection and the
file's writer lock, which the API's saves and the other workers take between two
closes) 150 closes took about 3.5 s, the last seconds late (docs/benchmarks.md,
"Quizzes").  Each close of a batch runs in a savepoint of its own, so one that fails
(``TooEarly``, an error) rolls back alone and only its activity is retried; the batch
commits once, and each activity answers after that commit.  On PostgreSQL each close
has a connection and a transaction of its own.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from authflow.db import Database
from authflow.policies import QUIZ_ATTEMPTS
from authflow.quizzes import service
from authflow.quizzes.models import SubmittedBy
from workflows.inputs import (
    CLOSE_QUIZ_ATTEMPT,
    GRADED_LEARNER_LEFT,
    CloseAttemptInput,
    CloseAttemptOutcome,
)


class QuizActivities:
    def __init__(self, db: Database, *, batch: bool | None = None) -> None:
        self._db = db
        self._batch = db.engine.dialect.name == "sqlite" if batch is None else batch
        self._waiting: list[tuple[str, asyncio.Future[CloseAttemptOutcome]]] = []
        self._closer: asyncio.Task[None] | None = None

    @activity.defn(name=CLOSE_QUIZ_ATTEMPT)
    async def close_attempt(self, request: CloseAttemptInput) -> CloseAttemptOutcome:
        if self._batch:
            outcome = await self._close_with_others(request.attempt_id)
        else:
            async with self._db.session() as session:
                outcome = await _close(session, request.attempt_id)
        if outcome.status != "missing" and outcome.status != "already_closed":
            activity.logger.info("quiz attempt closed at its deadline")
        return outcome

    async def _close_with_others(self, attempt_id: str) -> CloseAttemptOutcome:
        done: asyncio.Future[CloseAttemptOutcome] = asyncio.get_running_loop().create_future()
        waiting = (attempt_id, done)
        self._waiting.append(waiting)
        if self._closer is None:
            self._closer = asyncio.create_task(self._close_batches())
        try:
            # Shielded: the batch's other closes go on whatever happens to this one.
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            # Not taken yet: withdrawn.  Already in a batch: that batch closes it, and
            # the retry finds it closed at its deadline and answers for it (``_close``).
            if waiting in self._waiting:
                self._waiting.remove(waiting)
            raise

    async def _close_batches(self) -> None:
        """Everything that waits, in one transaction; then what came meanwhile."""
        try:
            while self._waiting:
                size = QUIZ_ATTEMPTS.close_batch_size
                batch, self._waiting = self._waiting[:size], self._waiting[size:]
                outcomes: list[CloseAttemptOutcome | BaseException] = []
                try:
                    async with self._db.session() as session:
                        for attempt_id, _ in batch:
                            try:
                                async with session.begin_nested():
                                    outcomes.append(await _close(session, attempt_id))
                            except Exception as exc:  # this close alone is rolled back
                                outcomes.append(exc)
                except Exception as exc:  # the commit failed: every close is retried
                    outcomes = [exc] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            self._closer = None


async def _close(session: AsyncSession, attempt_id: str) -> CloseAttemptOutcome:
    try:
        record = await service.close_at_deadline(session, attempt_id)
    except service.TooEarly as exc:
        # The worker's clock is behind the API's: retried in a moment.
        raise ApplicationError(str(exc), type="TooEarly") from exc
    if record is None:
        return CloseAttemptOutcome("missing")
    if record.graded_now is not None:
        passed = record.graded_now.passed
    elif record.attempt.submitted_by == SubmittedBy.DEADLINE:
        # Closed at its deadline, but not by an answer this workflow received: by a
        # batch this activity had left when it was cancelled, by an earlier attempt
        # whose answer was lost (a crash after the commit), or by the API finding it
        # overdue.  Its result email is still owed, and the workflow sends it once,
        # for the one "graded" it receives.
        passed = bool(record.attempt.passed)
    else:  # the learner submitted: no result email
        return CloseAttemptOutcome("already_closed", record.attempt.passed)
    result = await service.quiz_result(session, attempt_id)
    if result is None:
        # The learner left the course: graded all the same, but no email (the
        # workflow sends one only for "graded", so its code is unchanged).
        return CloseAttemptOutcome(GRADED_LEARNER_LEFT, passed)
    return CloseAttemptOutcome("graded", passed, result)
