"""Timed quiz attempts are closed at their deadline whatever restarts in between: the
worker is SIGKILLed, the API process is killed and started again, and the Temporal
server restarts (its state persisted in its file) - all while the attempts run.  Each
is still graded on its saved answers, ``submitted_by: "deadline"``, within 2 s."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authflow.quizzes.models import QuizAttempt, QuizAttemptResult
from tests.conftest import BACKENDS
from tests.faults.support import (
    api_process,
    dedicated_stack,
    start_worker,
    wait_http_ready,
    worker_process,
    workers_in_subprocesses,
)
from tests.quiz_calls import ALL_RIGHT, HALF_RIGHT, quiz_body, quiz_course
from tests.stack import eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

TIME_LIMIT = 40
LEARNERS = 4


async def _api(settings: Any, log: Path) -> tuple[Any, str]:
    proc, base_url = api_process(settings, log)
    proc.start()
    await wait_http_ready(base_url, proc)
    return proc, base_url


@pytest.mark.parametrize("backend", BACKENDS)
async def test_attempts_close_on_time_through_worker_api_and_temporal_restarts(
    tmp_path: Path, backend: str
) -> None:
    async with dedicated_stack(tmp_path, backend) as (stack, temporal):
        setup = await quiz_course(stack)
        assert (await setup.put_quiz(quiz_body(time_limit_seconds=TIME_LIMIT))).status_code == 200
        learners = [setup.learner] + [await setup.add_learner() for _ in range(LEARNERS - 1)]
        worker = worker_process(stack.settings, tmp_path / "worker.log")
        async with workers_in_subprocesses(stack):
            await start_worker(worker)
            api, base_url = await _api(stack.settings, tmp_path / "api.log")
            try:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                    attempts = []
                    for tokens in learners:
                        r = await http.post(
                            f"/api/v1/quizzes/{setup.quiz_id}/attempts",
                            headers=stack.bearer(tokens),
                        )
                        assert r.status_code == 201, r.text
                        attempts.append(r.json())
                        r = await http.put(
                            f"/api/v1/attempts/{r.json()['id']}/answers",
                            json={"answers": HALF_RIGHT},
                            headers=stack.bearer(tokens),
                        )
                        assert r.status_code == 200, r.text
                # Everything restarts while the attempts run.
                worker.kill()
                api.kill()
                await asyncio.to_thread(temporal.restart)
                api, base_url = await _api(stack.settings, tmp_path / "api.log")
                # Answers saved after the restarts count: half of the learners improve.
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                    for tokens, attempt in list(zip(learners, attempts, strict=True))[::2]:
                        r = await http.put(
                            f"/api/v1/attempts/{attempt['id']}/answers",
                            json={"answers": ALL_RIGHT},
                            headers=stack.bearer(tokens),
                        )
                        assert r.status_code == 200, r.text
                await start_worker(worker)
                deadlines = {a["id"]: datetime.fromisoformat(a["deadline"]) for a in attempts}
                left = min(deadlines.values()).timestamp() - datetime.now().timestamp()
                assert left > 3, f"the restarts took too long to test the deadline ({left:.1f}s)"

                async def all_closed() -> list[QuizAttempt] | None:
                    async with stack.db.session() as session:
                        rows = list(
                            await session.scalars(
                                select(QuizAttempt).where(QuizAttempt.id.in_(deadlines))
                            )
                        )
                    return rows if all(r.state == "submitted" for r in rows) else None

                rows = await eventually(all_closed, timeout=TIME_LIMIT + 30, interval=0.2)
            finally:
                api.stop()
                worker.stop()

        def lateness_of(row: QuizAttempt) -> float:
            assert row.submitted_at is not None, row.id  # every row is submitted
            return (row.submitted_at - deadlines[row.id]).total_seconds()

        improved = {a["id"] for a in attempts[::2]}
        for row in rows:
            lateness = lateness_of(row)
            assert row.submitted_by == "deadline", row.id
            assert 0 <= lateness <= 2, (row.id, lateness)
            assert row.score == (6 if row.id in improved else 3), row.id
        async with stack.db.session() as session:
            graded = await session.scalar(
                select(func.count()).where(QuizAttemptResult.attempt_id.in_(deadlines))
            )
        assert graded == 5 * LEARNERS, "each attempt graded exactly once"
        for attempt_id in deadlines:
            handle = stack.client.get_workflow_handle(f"quiz-attempt-{attempt_id}")
            assert await asyncio.wait_for(handle.result(), timeout=30) == "graded"
        print(
            "\nquiz deadlines after restarts: lateness "
            + ", ".join(f"{lateness_of(r):.2f}s" for r in rows)
        )
