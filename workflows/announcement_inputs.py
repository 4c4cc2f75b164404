"""Inputs, results and signals of the broadcast workflow and its activities (ids only:
never an address, a subject or a body)."""

# No ``from __future__ import annotations``: see workflows/inputs.py.
from dataclasses import dataclass, field

from workflows.inputs import EmailRoute


@dataclass(frozen=True)
class BroadcastCounts:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class BroadcastInput:
    announcement_id: str
    route: EmailRoute
    send_at_epoch: float | None = None
    page_size: int = 100
    # Carried across continue-as-new: where the previous run stopped and what it knew.
    started: bool = False
    after: str = ""
    paused: bool = False
    counts: BroadcastCounts = field(default_factory=BroadcastCounts)


@dataclass(frozen=True)
class AnnouncementRef:
    announcement_id: str


@dataclass(frozen=True)
class BroadcastStarted:
    """What ``begin_broadcast`` found: the announcement's state after it (``sending``
    once the audience is resolved) and the number of recipients."""

    state: str
    total: int


@dataclass(frozen=True)
class RecipientsPageInput:
    announcement_id: str
    after: str
    limit: int


@dataclass(frozen=True)
class RecipientsPage:
    user_ids: list[str]


@dataclass(frozen=True)
class RecipientRef:
    announcement_id: str
    user_id: str


@dataclass(frozen=True)
class RecipientClaim:
    """``claimed`` (send ``delivery_id``), ``held`` (not now: the announcement is not
    sending), or the recipient's final state (``sent``, ``failed``, ``skipped``,
    ``cancelled``) when there is nothing to send."""

    status: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class SettleRecipientInput:
    announcement_id: str
    user_id: str
    state: str
    error: str | None = None
    # The recipient's email: its record's state wins over ``state`` (a send retried
    # after its worker died reports "skipped" for a record already delivered).
    delivery_id: str | None = None


@dataclass(frozen=True)
class FinishInput:
    announcement_id: str
    cancelled: bool


@dataclass(frozen=True)
class ControlSignal:
    action: str  # authflow.announcements.states.Control


@dataclass(frozen=True)
class BroadcastProgress:
    state: str
    after: str
    counts: BroadcastCounts
