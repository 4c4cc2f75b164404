"""The life of one enrollment: a welcome email, drip emails as lessons open, inactivity
reminders; ended by completion or leaving.

The database is the truth (the workflow re-reads the enrollment each time it wakes), so
progress needs no signal: a reminder timer that fires after recent activity just sleeps
again.  Signals only wake it early: ``lessons_changed`` (a changed ``release_after_days``
moves the timers), ``ended`` (left or completed).  It continues as new every few rounds,
so months of life keep its history bounded.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from authflow.courses import emails
    from authflow.emails import EmailType
    from workflows.emails import send_email
    from workflows.learning_inputs import (
        DripState,
        EnrollmentFlowInput,
        EnrollmentPlan,
        EnrollmentPlanRequest,
    )
    from workflows.names import ActivityName, SignalName, WorkflowName

DAY = 86_400.0
MAX_REMINDERS = 3
# Runs since this patch take the reminders already sent from the plan (the delivery
# records of every run of the enrollment), so a learner who left and enrolled again
# gets what is left of the three, not three more.
REMINDERS_PER_ENROLLMENT = "reminders-per-enrollment"
# Rounds (wake-ups) per run before continuing as new: each round adds a handful of
# events, so a run's history stays far below Temporal's limits whatever the course.
ROUNDS_PER_RUN = 40
PLAN_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=WorkflowName.ENROLLMENT)
class EnrollmentWorkflow:
    def __init__(self) -> None:
        self._woken = False
        self._ended = False

    @workflow.signal(name=SignalName.LESSONS_CHANGED)
    def lessons_changed(self) -> None:
        self._woken = True

    @workflow.signal(name=SignalName.ENDED)
    def ended(self) -> None:
        self._ended = True

    @workflow.run
    async def run(self, flow: EnrollmentFlowInput) -> str:
        state = flow.state
        if state is None:
            plan = await self._plan(flow)
            if not plan.active:
                return "left"
            await self._email(flow, emails.COURSE_ENROLLED, plan, "enrolled")
            # Lessons already open at enrolment are not announced again.
            state = DripState(announced_through_day=self._day_now(plan))
        for _ in range(ROUNDS_PER_RUN):
            plan = await self._plan(flow)
            # Completed first: the certificate's "ended" signal may arrive before this
            # wakes, and the enrollment was completed, not left (no command changes).
            if plan.completed:
                return "completed"
            if self._ended or not plan.active:
                return "left"
            # Only when the records know of more (a run after re-enrolling): the marker
            # is recorded in those runs alone, and older histories never reach it.
            if plan.reminders_sent > state.reminders_sent and workflow.patched(
                REMINDERS_PER_ENROLLMENT
            ):
                state = replace(state, reminders_sent=plan.reminders_sent)
            state = await self._drip(flow, plan, state)
            state = await self._remind(flow, plan, state)
            wake = self._next_wake(flow, plan, state)
            self._woken = False
            condition = lambda: self._woken or self._ended  # noqa: E731
            if wake is None:
                await workflow.wait_condition(condition)
            else:
                delay = max(1.0, wake - workflow.now().timestamp())
                with contextlib.suppress(TimeoutError):  # the timer is the usual way
                    await workflow.wait_condition(condition, timeout=timedelta(seconds=delay))
            if self._ended:
                return "ended"
        workflow.continue_as_new(replace(flow, state=state))

    def _day_now(self, plan: EnrollmentPlan) -> int:
        return int((workflow.now().timestamp() - plan.enrolled_at_epoch) // DAY)

    async def _plan(self, flow: EnrollmentFlowInput) -> EnrollmentPlan:
        plan: EnrollmentPlan = await workflow.execute_activity(
            ActivityName.LOAD_ENROLLMENT_PLAN,
            EnrollmentPlanRequest(flow.enrollment_id),
            result_type=EnrollmentPlan,
            task_queue=flow.email.task_queue,
            start_to_close_timeout=PLAN_TIMEOUT,
        )
        return plan

    async def _email(
        self,
        flow: EnrollmentFlowInput,
        email: EmailType,
        plan: EnrollmentPlan,
        key: str,
        **extra: str,
    ) -> None:
        """One email through the pipeline (a child ``SendEmailWorkflow``, its own record
        and retries); ``key`` makes it once per enrollment run and event."""
        context = {"course_title": plan.course_title, "course_url": plan.course_url, **extra}
        run = workflow.info().first_execution_run_id or workflow.info().run_id
        await send_email(email, flow.user_id, context, key=f"{flow.enrollment_id}-{run}-{key}")

    async def _drip(
        self, flow: EnrollmentFlowInput, plan: EnrollmentPlan, state: DripState
    ) -> DripState:
        """One email for every lesson opened since the last one, at most one a day."""
        now = workflow.now().timestamp()
        today = self._day_now(plan)
        opened = [d for d in plan.release_days if state.announced_through_day < d <= today]
        if not opened or now - state.last_drip_email_epoch < DAY:
            return state
        titles = [plan.titles_by_day.get(str(d), "") for d in opened]
        await self._email(
            flow,
            emails.LESSON_OPENED,
            plan,
            f"day-{max(opened)}",
            lessons=", ".join(t for t in titles if t),
        )
        return replace(state, announced_through_day=today, last_drip_email_epoch=now)

    async def _remind(
        self, flow: EnrollmentFlowInput, plan: EnrollmentPlan, state: DripState
    ) -> DripState:
        if flow.reminder_days <= 0 or state.reminders_sent >= MAX_REMINDERS:
            return state
        now = workflow.now().timestamp()
        quiet_since = max(plan.last_activity_epoch, state.last_reminder_epoch)
        if now - quiet_since < flow.reminder_days * DAY:
            return state
        await self._email(
            flow, emails.INACTIVITY_REMINDER, plan, f"reminder-{state.reminders_sent + 1}"
        )
        return replace(state, reminders_sent=state.reminders_sent + 1, last_reminder_epoch=now)

    def _next_wake(
        self, flow: EnrollmentFlowInput, plan: EnrollmentPlan, state: DripState
    ) -> float | None:
        times: list[float] = []
        upcoming = [d for d in plan.release_days if d > state.announced_through_day]
        if upcoming:
            opens = plan.enrolled_at_epoch + upcoming[0] * DAY
            times.append(max(opens, state.last_drip_email_epoch + DAY))
        if flow.reminder_days > 0 and state.reminders_sent < MAX_REMINDERS:
            quiet_since = max(plan.last_activity_epoch, state.last_reminder_epoch)
            times.append(quiet_since + flow.reminder_days * DAY)
        return min(times) if times else None
