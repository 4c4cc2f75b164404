"""One announcement's broadcast: wait for send_at, resolve the audience, send page by page.

Each run sends one page of recipients and continues as new with its cursor, so an
audience of any size keeps every run's history small.  Pause, resume and cancel arrive as
the ``control`` signal after the API wrote the new state; the database stays the
authority (a send claims its recipient only while the announcement is ``sending``), so a
lost signal delays a pause by one send, never lets one through.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from authflow.announcements.states import AnnouncementState, Control, RecipientState
    from authflow.policies import DeliveryState
    from workflows.announcement_inputs import (
        AnnouncementRef,
        BroadcastCounts,
        BroadcastInput,
        BroadcastProgress,
        BroadcastStarted,
        ControlSignal,
        FinishInput,
        RecipientClaim,
        RecipientRef,
        RecipientsPage,
        RecipientsPageInput,
        SettleRecipientInput,
    )
    from workflows.emails import deliver

BOOKKEEPING_ATTEMPT = timedelta(seconds=60)
BOOKKEEPING_BUDGET = timedelta(hours=1)
# Sends in flight at once: enough to keep the queue's rate with a slow SMTP server;
# the pacer and the queue's rate limit space them.
CONCURRENT_SENDS = 10
# A paused broadcast looks at the database this often, in case a resume signal was lost.
PAUSED_RECHECK = timedelta(minutes=1)
LOCAL_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Patch: a control signal that arrives while the workflow reads the database's state wins
# over that read (the read may predate the API's newer pause / resume / cancel; before
# the patch a resume arriving then was undone, and sending waited a whole
# PAUSED_RECHECK).  Histories without the marker replay as before.
SIGNALS_WIN_OVER_READS = "broadcast-signals-win-over-state-reads"
CLAIMED = "claimed"
# The email pipeline's outcome of a send -> the recipient's state.
_RECIPIENT_STATE = {
    DeliveryState.DELIVERED.value: RecipientState.SENT,
    DeliveryState.FAILED.value: RecipientState.FAILED,
}

T = TypeVar("T")


async def _bookkeeping(name: str, arg: Any, result_type: type[T]) -> T:
    """A short database activity of the broadcast (on the workflow's own queue)."""
    result: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=BOOKKEEPING_ATTEMPT,
        schedule_to_close_timeout=BOOKKEEPING_BUDGET,
    )
    return result


@workflow.defn(name="BroadcastWorkflow")
class BroadcastWorkflow:
    def __init__(self) -> None:
        self._state = AnnouncementState.SCHEDULED.value
        self._paused = False
        self._cancelled = False
        self._after = ""
        self._counts = BroadcastCounts()
        # Control signals received so far (see SIGNALS_WIN_OVER_READS).
        self._signals = 0

    @workflow.signal(name="control")
    def control(self, signal: ControlSignal) -> None:
        self._signals += 1
        if signal.action == Control.PAUSE:
            self._paused = True
        elif signal.action == Control.RESUME:
            self._paused = False
        elif signal.action == Control.CANCEL:
            self._cancelled = True

    @workflow.query(name="progress")
    def progress(self) -> BroadcastProgress:
        state = self._state
        if self._cancelled:
            state = AnnouncementState.CANCELLED.value
        elif self._paused:
            state = AnnouncementState.PAUSED.value
        return BroadcastProgress(state, self._after, self._counts)

    @workflow.run
    async def run(self, job: BroadcastInput) -> str:
        self._paused, self._after, self._counts = job.paused, job.after, job.counts
        ref = AnnouncementRef(job.announcement_id)
        if not job.started:
            await self._wait_for_send_at(job)
            started = await self._begin(ref)
            if started is None:
                return await self._finish(job, cancelled=True)
        self._state = AnnouncementState.SENDING.value
        while True:
            if self._cancelled:
                return await self._finish(job, cancelled=True)
            if self._paused:
                await self._wait_while_paused(ref)
                continue
            page: RecipientsPage = await _bookkeeping(
                "recipients_page",
                RecipientsPageInput(job.announcement_id, self._after, job.page_size),
                RecipientsPage,
            )
            if not page.user_ids:
                if self._after:
                    # One more pass from the start: it finds any recipient still open
                    # behind the cursor (normally none) before the announcement is done.
                    self._after = ""
                    continue
                return await self._finish(job, cancelled=False)
            await self._send_page(job, page.user_ids)
            if self._cancelled or self._paused:
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                replace(
                    job,
                    started=True,
                    after=self._after,
                    paused=self._paused,
                    counts=self._counts,
                )
            )

    async def _wait_for_send_at(self, job: BroadcastInput) -> None:
        """A durable timer; a cancel ends the wait at once."""
        if job.send_at_epoch is None:
            return
        delay = job.send_at_epoch - workflow.now().timestamp()
        if delay <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self._cancelled, timeout=timedelta(seconds=delay))

    async def _begin(self, ref: AnnouncementRef) -> BroadcastStarted | None:
        """Start sending (resolving the audience), once not paused; None if cancelled."""
        while True:
            if self._cancelled:
                return None
            if self._paused:
                await self._wait_while_paused(ref)
                continue
            started: BroadcastStarted = await _bookkeeping("begin_broadcast", ref, BroadcastStarted)
            if started.state == AnnouncementState.SENDING:
                return started
            self._apply(started.state)

    async def _wait_while_paused(self, ref: AnnouncementRef) -> None:
        self._state = AnnouncementState.PAUSED.value
        while self._paused and not self._cancelled:
            try:
                await workflow.wait_condition(
                    lambda: not self._paused or self._cancelled, timeout=PAUSED_RECHECK
                )
            except TimeoutError:
                await self._follow_database(ref)

    async def _database_state(self, ref: AnnouncementRef) -> str:
        state: str = await _bookkeeping("announcement_state", ref, str)
        return state

    async def _follow_database(self, ref: AnnouncementRef) -> None:
        """Take the database's state, unless a control signal arrived while it was read:
        the API signals after its commit, so the signal is at least as new as the read."""
        seen = self._signals
        state = await self._database_state(ref)
        if seen != self._signals and workflow.patched(SIGNALS_WIN_OVER_READS):
            return
        self._apply(state)

    def _apply(self, state: str) -> None:
        """Follow the database's state."""
        if state in (AnnouncementState.CANCELLED, AnnouncementState.DONE):
            self._cancelled = True
        elif state == AnnouncementState.PAUSED:
            self._paused = True
        else:
            self._paused = False

    async def _send_page(self, job: BroadcastInput, user_ids: list[str]) -> None:
        for start in range(0, len(user_ids), CONCURRENT_SENDS):
            if self._cancelled or self._paused:
                return
            chunk = user_ids[start : start + CONCURRENT_SENDS]
            outcomes = await asyncio.gather(*(self._send_one(job, uid) for uid in chunk))
            if "held" in outcomes:
                # Not sent: the announcement was paused or cancelled under us.  The cursor
                # stays before this chunk: its held recipients are still pending and are
                # fetched again after a resume (the ones that went out are not).
                await self._follow_database(AnnouncementRef(job.announcement_id))
                return
            self._after = chunk[-1]

    async def _send_one(self, job: BroadcastInput, user_id: str) -> str:
        """Claim the recipient (and write their email's record), send it through the
        email pipeline on the announcement queue, record the outcome."""
        ref = RecipientRef(job.announcement_id, user_id)
        claim: RecipientClaim = await workflow.execute_local_activity(
            "claim_recipient",
            ref,
            result_type=RecipientClaim,
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
        )
        status = claim.status
        if status == CLAIMED and claim.delivery_id is not None:
            outcome = await deliver(job.route, claim.delivery_id)
            status = _RECIPIENT_STATE.get(outcome, RecipientState.SKIPPED).value
            await workflow.execute_local_activity(
                "settle_recipient",
                SettleRecipientInput(
                    job.announcement_id, user_id, status, delivery_id=claim.delivery_id
                ),
                start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
            )
        self._count(status)
        return status

    def _count(self, status: str) -> None:
        counts = self._counts
        if status == RecipientState.SENT:
            self._counts = replace(counts, sent=counts.sent + 1)
        elif status == RecipientState.FAILED:
            self._counts = replace(counts, failed=counts.failed + 1)
        elif status == RecipientState.SKIPPED:
            self._counts = replace(counts, skipped=counts.skipped + 1)

    async def _finish(self, job: BroadcastInput, *, cancelled: bool) -> str:
        state = await _bookkeeping(
            "finish_broadcast", FinishInput(job.announcement_id, cancelled), str
        )
        self._state = state
        if state == AnnouncementState.PAUSED:
            # Paused after the last send: done once resumed.
            self._paused = True
            await self._wait_while_paused(AnnouncementRef(job.announcement_id))
            return await self._finish(job, cancelled=self._cancelled)
        return state
