"""Every delivery and code policy, declared once.

Email kind -> task queue, global rate limit and retry policy; the rules of one-time
codes.  Nothing else in the code base spells a queue name or a limit: it looks the
policy up here by kind.  Configuration may override a limit or a code rule
(``resolve_email_policies``/``OtpRules.from_settings``); the defaults are the contract's.

This module imports only the standard library, so workflows may import it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol


class EmailKind(StrEnum):
    """The contract's email kinds: each is one task queue with its rate and retries.

    The emails themselves (templates, opt-out) are declared in ``authflow.emails``;
    many of them may share one kind's queue.
    """

    REGISTER = "register"
    PASSWORD_RESET = "password_reset"
    NOTIFICATION = "notification"
    ANNOUNCEMENT = "announcement"


class OtpPurpose(StrEnum):
    """The purposes a one-time code can serve; codes of one purpose never verify another."""

    REGISTER = "register"
    PASSWORD_RESET = "password_reset"


class PreferenceCategory(StrEnum):
    """The kinds of email a user may turn off (``/me/email-preferences``).  Codes and
    security notices belong to none: they can never be turned off."""

    ANNOUNCEMENTS = "announcements"
    COURSE_UPDATES = "course_updates"
    REMINDERS = "reminders"


class DeliveryState(StrEnum):
    """The states of one email's delivery record (every kind).  The allowed moves
    between them are data (``authflow.deliveries.TRANSITIONS``)."""

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    # The content died before it could matter (a code expired or was burnt).
    EXPIRED = "expired"
    # A newer email replaced this one (a code re-sent).
    SUPERSEDED = "superseded"
    # Nobody wants it any more (the user was deleted, a broadcast was cancelled).
    CANCELLED = "cancelled"


class CodeState(StrEnum):
    """The contract's view of one code's delivery (``/admin/otp``): its email's state,
    or ``used`` once the code was used; ``superseded`` is an addition the contract allows."""

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    USED = "used"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class RetryRules:
    """Exponential backoff; ``give_up_after_seconds`` None means "while the code lives"."""

    initial_interval_seconds: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_seconds: float = 60.0
    give_up_after_seconds: float | None = None
    minimum_attempts: int = 5

    def schedule_to_close_seconds(self, code_ttl_seconds: float, attempt_timeout: float) -> float:
        """How long an email may keep being retried.

        For a code: as long as it is valid, but never fewer than ``minimum_attempts``
        attempts (with a very short TTL the backoff alone would cut them short).
        """
        budget = self.give_up_after_seconds or code_ttl_seconds
        interval, needed = self.initial_interval_seconds, 0.0
        for _ in range(self.minimum_attempts - 1):
            needed += attempt_timeout + interval
            interval = min(interval * self.backoff_coefficient, self.maximum_interval_seconds)
        return max(budget, needed + attempt_timeout)


@dataclass(frozen=True)
class EmailPolicy:
    kind: EmailKind
    task_queue: str
    rate_per_second: float
    retry: RetryRules
    # Per-attempt limit of one SMTP send (connection + transaction), pacing wait excluded.
    attempt_timeout_seconds: float = 30.0


EMAIL_POLICIES: dict[EmailKind, EmailPolicy] = {
    EmailKind.REGISTER: EmailPolicy(EmailKind.REGISTER, "email-register", 20.0, RetryRules()),
    EmailKind.PASSWORD_RESET: EmailPolicy(
        EmailKind.PASSWORD_RESET, "email-password-reset", 10.0, RetryRules()
    ),
    EmailKind.NOTIFICATION: EmailPolicy(
        EmailKind.NOTIFICATION, "email-notification", 5.0, RetryRules(give_up_after_seconds=3600)
    ),
    # Broadcasts to many users: a queue of their own, so a 10,000-user announcement never
    # waits in front of a code or a notification.
    EmailKind.ANNOUNCEMENT: EmailPolicy(
        EmailKind.ANNOUNCEMENT,
        "email-announcement",
        5.0,
        RetryRules(give_up_after_seconds=24 * 3600),
    ),
}

# Which email kind carries the code of each purpose.
PURPOSE_EMAIL_KIND: dict[OtpPurpose, EmailKind] = {
    OtpPurpose.REGISTER: EmailKind.REGISTER,
    OtpPurpose.PASSWORD_RESET: EmailKind.PASSWORD_RESET,
}


@dataclass(frozen=True)
class QuizLimits:
    """The contract's bounds of a quiz definition, and sizes that keep one row sane."""

    min_time_limit_seconds: int = 10
    max_time_limit_seconds: int = 86_400
    max_attempts: int = 100
    max_questions: int = 200
    max_options: int = 50
    max_points: int = 1000
    max_text_length: int = 5000
    max_answer_length: int = 1000


QUIZ_LIMITS = QuizLimits()


@dataclass(frozen=True)
class QuizAttemptPolicy:
    """How a timed attempt is closed: its workflow runs on ``task_queue``; the grading
    activity is retried (a database or worker outage) until it succeeds, for as long as
    ``close_retry_seconds``: its first ``close_local_attempts`` as a local activity (in
    the worker that runs the timer's workflow task), then as a server-scheduled activity.
    The contract: closed within 2 s of the deadline."""

    task_queue: str = "quiz-attempts"
    close_attempt_timeout_seconds: float = 10.0
    close_local_attempts: int = 5
    # A timed attempt's workflow is started with its first workflow task held back by
    # the server until this long before the deadline (Temporal's start delay), and
    # only then sets its timer for the rest: the timer runs from when that task
    # completes, and a task run in the rush of a whole class starting at once
    # completed seconds late, and so did the close (docs/benchmarks.md, "Quizzes").
    wake_before_deadline_seconds: float = 5.0
    # On SQLite, closes that arrive together share a transaction (activities/quizzes.py),
    # at most this many: the writer lock is held for the whole batch, and a learner's
    # save waits behind it.
    close_batch_size: int = 20
    # Workflow task polls the quiz worker keeps open at once (the SDK's default is 5:
    # one on the normal queue, four on the sticky one).  Each poll brings one task, and
    # 150 deadlines in one second bring 300 (the close's, then the result email child's
    # start): with four sticky polls the tasks were taken about 80 a second, the last
    # waited on the sticky queue past its timeout, and closed about 2 s late
    # (docs/benchmarks.md, "Quizzes").
    workflow_task_pollers: int = 20
    close_retry_seconds: float = 7 * 86_400
    close_retry_initial_seconds: float = 0.2
    close_retry_maximum_seconds: float = 5.0


QUIZ_ATTEMPTS = QuizAttemptPolicy()


# Every task queue a worker may serve: the email queues, then the learning flows'.
ALL_TASK_QUEUES: tuple[str, ...] = (
    *(p.task_queue for p in EMAIL_POLICIES.values()),
    QUIZ_ATTEMPTS.task_queue,
)

# The queues a public form can flood (anyone may register, hundreds in one second).
# Worker layouts (``authflow dev``; see docs/operations.md for production) give them
# processes of their own and the other queues one more: in one process, a password
# reset's workflow and send waited behind a registration spike's (isolation, issue 6).
SPIKE_QUEUES: tuple[str, ...] = (EMAIL_POLICIES[EmailKind.REGISTER].task_queue,)
# Timed quiz deadlines come in bursts (a class that started together runs out together)
# and each must close within 2 s: in the process of the other queues, the closes shared
# one event loop and SQLite connection with the burst of result emails they start
# (docs/benchmarks.md, "Quizzes").  Layouts give them a process of their own.
DEADLINE_QUEUES: tuple[str, ...] = (QUIZ_ATTEMPTS.task_queue,)
OTHER_QUEUES: tuple[str, ...] = tuple(
    q for q in ALL_TASK_QUEUES if q not in SPIKE_QUEUES and q not in DEADLINE_QUEUES
)

# The pacer counts a queue's acceptances over a window slightly wider than one second
# (1 / PACING_FACTOR = 1.0101 s).  The time a worker takes to read the server's answer
# needs no margin (an acceptance is recorded when its answer is read, never before the
# server gave it: activities/pacer.py); the 10 ms cover clock differences between worker
# hosts, which NTP keeps within a few.  Each millisecond of margin costs a backlog 0.1 %
# of the rate: it drains at ~0.99 R (docs/benchmarks.md).
PACING_FACTOR = 0.99


@dataclass(frozen=True)
class OtpRules:
    length: int = 6
    ttl_seconds: int = 600
    max_attempts: int = 5
    resend_cooldown_seconds: int = 60
    # Wrong codes for one address and purpose in any rolling day, across every code.
    max_failures_per_day: int = 10
    failure_window_seconds: int = 24 * 3600

    @classmethod
    def from_settings(cls, settings: _OtpSettings) -> OtpRules:
        return cls(
            ttl_seconds=settings.otp_ttl_seconds,
            max_attempts=settings.otp_max_attempts,
            resend_cooldown_seconds=settings.otp_resend_cooldown_seconds,
            max_failures_per_day=settings.otp_max_failures_per_day,
        )


class _OtpSettings(Protocol):
    otp_ttl_seconds: int
    otp_max_attempts: int
    otp_resend_cooldown_seconds: int
    otp_max_failures_per_day: int


# --- HTTP abuse limits -------------------------------------------------------------------
# The unauthenticated auth endpoints, each limited per client address
# (CLIENT_RATE_LIMIT_PER_MINUTE requests a minute, per endpoint).
CLIENT_LIMITED_ROUTES: frozenset[tuple[str, str]] = frozenset(
    ("POST", f"/api/v1/auth/{path}")
    for path in (
        "register",
        "register/resend-otp",
        "register/verify",
        "login",
        "refresh",
        "password/forgot",
        "password/reset",
    )
)
CLIENT_RATE_WINDOW_SECONDS = 60.0
# A refresh token presented twice within this long (two tabs) gets the same new pair.
REFRESH_GRACE_SECONDS = 10.0
# Admin re-sends of one delivery within this long are one click (a double click, two
# admins at once): one email.  A re-send of it after that emails a fresh code again.
ADMIN_RESEND_REPEAT_SECONDS = 10.0
# Every call the API makes to Temporal gives up after this long (the outbox retries).
TEMPORAL_CALL_TIMEOUT_SECONDS = 5.0
# Is Temporal reachable?  Asked before a request commits work that needs it; the answer
# is kept this long so a burst asks once.
TEMPORAL_PROBE_TIMEOUT_SECONDS = 1.5
TEMPORAL_PROBE_CACHE_SECONDS = 2.0


def email_kind_named(name: str) -> EmailKind:
    """An email kind by its name or its task queue's (``register``, ``email-register``)."""
    for policy in EMAIL_POLICIES.values():
        if name in (policy.kind.value, policy.task_queue):
            return policy.kind
    raise ValueError(f"unknown email kind or queue {name!r}")


def resolve_email_policies(
    rate_overrides: Mapping[EmailKind, float] | None = None,
) -> dict[EmailKind, EmailPolicy]:
    """The declared policies with configured rate limits applied (``EMAIL_RATE_LIMITS``,
    parsed and checked by the settings)."""
    overrides = rate_overrides or {}
    return {
        kind: replace(policy, rate_per_second=overrides.get(kind, policy.rate_per_second))
        for kind, policy in EMAIL_POLICIES.items()
    }


# Roles and permissions seeded by ``authflow migrate`` (the contract's table).
PERMISSIONS: dict[str, str] = {
    "users:read": "List and read users and the audit log",
    "users:update": "Ban and unban users",
    "users:delete": "Delete users",
    "users:approve": "Approve accounts waiting for approval",
    "otp:manage": "Inspect code deliveries and re-send codes",
    "roles:manage": "Manage roles, permissions and user roles",
    "courses:create": "Create courses and manage the ones you own",
    "courses:manage": "Manage every course",
    "announcements:send": "Send announcements to any audience",
    "announcements:send_own": "Send announcements to the learners of your own courses",
}
# Held by ADMIN alone: whoever holds it may give any role any permission.
ROLES_MANAGE = "roles:manage"
SEEDED_ROLES: dict[str, tuple[str, ...]] = {
    "ADMIN": tuple(PERMISSIONS),
    "MANAGER": (
        "users:read",
        "users:update",
        "users:delete",
        "users:approve",
        "otp:manage",
        "courses:manage",
        "announcements:send",
    ),
    "INSTRUCTOR": ("courses:create", "announcements:send_own"),
    "USER": (),
}
DEFAULT_ROLE = "USER"
ADMIN_ROLE = "ADMIN"

# Temporal search attributes (Keyword): never an email, name or code.  Their typed keys
# are built from these names in ``workflows.search_attributes``.
SA_KIND = "AuthflowKind"
SA_DELIVERY_STATE = "AuthflowDeliveryState"
SA_USER_ID = "AuthflowUserId"
SA_COURSE_ID = "AuthflowCourseId"
SEARCH_ATTRIBUTES: dict[str, str] = dict.fromkeys(
    (SA_KIND, SA_DELIVERY_STATE, SA_USER_ID, SA_COURSE_ID), "Keyword"
)
