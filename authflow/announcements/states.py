"""The state machines of an announcement and of each of its recipients (data, not code).

Standard library only: workflows import these names too.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class AnnouncementState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class AudienceKind(StrEnum):
    ALL = "all"
    ROLE = "role"
    COURSE = "course"


class RecipientState(StrEnum):
    """``pending`` -> ``sending`` (claimed, before the SMTP transaction) -> ``sent`` |
    ``failed``; ``skipped`` when the user turned announcements off or is gone;
    ``cancelled`` when the announcement was cancelled before their turn."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


_A = AnnouncementState
# The contract: scheduled -> sending <-> paused -> done; pause from scheduled or sending,
# resume from paused, cancel from any state but done.  A paused announcement whose
# sending never started resumes into ``scheduled`` (its send_at may still be ahead).
TRANSITIONS: Mapping[AnnouncementState, frozenset[AnnouncementState]] = {
    _A.SCHEDULED: frozenset({_A.SENDING, _A.PAUSED, _A.CANCELLED}),
    _A.SENDING: frozenset({_A.PAUSED, _A.DONE, _A.CANCELLED}),
    _A.PAUSED: frozenset({_A.SENDING, _A.SCHEDULED, _A.CANCELLED, _A.DONE}),
    _A.DONE: frozenset(),
    _A.CANCELLED: frozenset(),
}
FINAL = frozenset(state for state, moves in TRANSITIONS.items() if not moves)
# "Re-send failed" (``POST /announcements/{id}/resend-failed``) moves the announcement
# back to ``sending`` from these states only.  ``done``: its broadcast has finished with
# every recipient, so the failures are final and a new round cannot race the first.  Not
# ``scheduled``/``sending``/``paused``: the broadcast still runs (resume it and let it
# finish first); not ``cancelled``: the sender stopped it, and sending to the failed but
# not to the cancelled recipients would contradict that.  Kept apart from TRANSITIONS:
# no other writer (a resume, the workflow's finish) may take ``done`` back to sending.
RESEND_FROM: frozenset[AnnouncementState] = frozenset({_A.DONE})


def sources(target: AnnouncementState) -> frozenset[AnnouncementState]:
    """The states an announcement may move to ``target`` from."""
    return frozenset(state for state, moves in TRANSITIONS.items() if target in moves)


def broadcast_workflow_id(announcement_id: str, resend_round: int = 0) -> str:
    """The broadcast workflow of an announcement's first send (round 0) or of its n-th
    "re-send failed": each round is its own workflow, so a new round never meets the
    previous one's run (a start would find it still closing and do nothing)."""
    base = f"announcement-{announcement_id}"
    return base if resend_round == 0 else f"{base}-resend-{resend_round}"


class Control(StrEnum):
    """What the API asks a running broadcast (signal ``control``)."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
