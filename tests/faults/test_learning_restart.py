"""The learning flows survive a worker and a Temporal restart: a learner enrolled before
both went down completes the course while they are down; once they are back the
certificate email (relayed by the outbox) arrives once and the enrollment's workflow
ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.courses.starter import enrollment_workflow_id
from tests.faults.support import dedicated_stack
from tests.learning_calls import API, enroll, instructor, learner, published_course

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


async def test_learning_flows_survive_worker_and_temporal_restarts(tmp_path: Path) -> None:
    async with dedicated_stack(tmp_path) as (stack, temporal):
        owner = await instructor(stack)
        student = await learner(stack, "Ada Restart")
        course, lessons = await published_course(stack, owner, lessons=[{}, {}])
        enrollment = await enroll(stack, student, course["id"])
        await stack.wait_for_mail(student.email, subject="You are enrolled", timeout=60)

        await stack.workers.stop()
        await asyncio.to_thread(temporal.stop)
        try:
            for lesson in lessons:  # progress never needs Temporal
                r = await stack.http.post(
                    f"{API}/lessons/{lesson['id']}/complete", headers=student.headers
                )
                assert r.status_code == 200, r.text
            assert r.json()["progress"]["percent"] == 100
        finally:
            await asyncio.to_thread(temporal.start)
            await stack.workers.start()

        mark = 0
        # The outbox relay hands the certificate email and the end signal over.
        mail = await stack.wait_for_mail(
            student.email, after_id=mark, subject="Your certificate", timeout=120
        )
        progress = (
            await stack.http.get(
                f"{API}/me/courses/{course['id']}/progress", headers=student.headers
            )
        ).json()
        assert f"/certificates/{progress['certificate_id']}" in mail.text
        handle = stack.client.get_workflow_handle(enrollment_workflow_id(enrollment["id"]))
        assert await asyncio.wait_for(handle.result(), timeout=120) in ("ended", "completed")
        await asyncio.sleep(2)
        certificates = [
            m
            for m in stack.sink.messages
            if m.is_to(student.email) and "certificate" in m.subject.lower()
        ]
        assert len(certificates) == 1
