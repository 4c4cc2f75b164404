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


def sources(target: AnnouncementState) -> frozenset[AnnouncementState]:
    """The states an announcement may move to ``target`` from."""
    return frozenset(state for state, moves in TRANSITIONS.items() if target in moves)


class Control(StrEnum):
    """What the API asks a running broadcast (signal ``control``)."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
