"""The typed commands that must follow a commit: workflow starts and signals.

A use case queues one on its transaction (``api.unit_of_work.after_commit``, or
``pending_entry`` where no request is involved: a worker's activity); it is written to
the outbox (``pending_flows``) with the rows it follows and dispatched once they are
committed (``api.outbox``, which maps each command to its workflow call in one place).
Commands are data only, so the core may queue them without knowing Temporal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from authflow.models import PendingFlow, utcnow


@dataclass(frozen=True)
class StartCodeFlow:
    """Start the code flow of this user and purpose (``resend``: or ask the running one
    for a fresh code).  ``first_code_*``: a code the API issued, sent first.
    ``replace``: a running flow is replaced by one that sends that code (a repeated
    registration of a pending address: its own code, bound to its own password)."""

    purpose: str
    user_id: str
    resend: bool = False
    first_code_id: str | None = None
    first_code_expires_at: float | None = None
    replace: bool = False


@dataclass(frozen=True)
class SignalVerified:
    purpose: str
    user_id: str
    needs_approval: bool


@dataclass(frozen=True)
class SignalApproved:
    user_id: str


@dataclass(frozen=True)
class Notify:
    user_id: str
    template: str


@dataclass(frozen=True)
class CancelUserFlows:
    user_id: str


@dataclass(frozen=True)
class StartEnrollment:
    """Start the enrollment's workflow (drip emails, reminders)."""

    user_id: str
    enrollment_id: str
    course_id: str


@dataclass(frozen=True)
class EndEnrollment:
    """The learner left: the enrollment's workflow ends."""

    user_id: str
    enrollment_id: str


@dataclass(frozen=True)
class CertificateIssued:
    """Email the certificate (once, keyed by it) and end the enrollment's workflow."""

    user_id: str
    certificate_id: str
    course_id: str
    course_title: str
    enrollment_id: str


@dataclass(frozen=True)
class LessonsChanged:
    """Wake the course's enrollment workflows: the drip schedule may have moved."""

    course_id: str


@dataclass(frozen=True)
class StartBroadcast:
    """Start an announcement's broadcast workflow (it waits for ``send_at`` itself).
    ``resend_round`` > 0: the n-th "re-send failed", its own workflow, which goes
    straight to sending the recipients reopened for it (the audience is resolved)."""

    announcement_id: str
    course_id: str | None
    send_at_epoch: float | None
    page_size: int
    resend_round: int = 0


@dataclass(frozen=True)
class ControlBroadcast:
    """Wake a broadcast with ``pause``, ``resume`` or ``cancel`` (the database already
    holds the new state: the signal only makes the workflow see it at once).
    ``resend_round``: the round whose workflow is running (0: the first send)."""

    announcement_id: str
    action: str
    resend_round: int = 0


@dataclass(frozen=True)
class StartQuizAttempt:
    """Start a timed attempt's deadline workflow (a late start closes it at once)."""

    attempt_id: str
    deadline_epoch: float
    user_id: str
    course_id: str


@dataclass(frozen=True)
class QuizSubmitted:
    """Tell a timed attempt's workflow its learner submitted (it ends early)."""

    attempt_id: str


Command = (
    StartCodeFlow
    | SignalVerified
    | SignalApproved
    | Notify
    | CancelUserFlows
    | StartEnrollment
    | EndEnrollment
    | CertificateIssued
    | LessonsChanged
    | StartBroadcast
    | ControlBroadcast
    | StartQuizAttempt
    | QuizSubmitted
)
COMMAND_TYPES: dict[str, type[Command]] = {
    t.__name__: t
    for t in (
        StartCodeFlow,
        SignalVerified,
        SignalApproved,
        Notify,
        CancelUserFlows,
        StartEnrollment,
        EndEnrollment,
        CertificateIssued,
        LessonsChanged,
        StartBroadcast,
        ControlBroadcast,
        StartQuizAttempt,
        QuizSubmitted,
    )
}


def encode(command: Command) -> tuple[str, dict[str, object]]:
    return type(command).__name__, dataclasses.asdict(command)


def pending_entry(command: Command) -> PendingFlow:
    """The outbox row of a command (added to the caller's transaction by the caller)."""
    action, args = encode(command)
    return PendingFlow(action=action, args=args, created_at=utcnow(), attempts=0)
