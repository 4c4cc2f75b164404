"""Inputs, results and signal payloads of workflows and activities.

One frozen dataclass each, so fields can be added later without breaking running
workflows.  They carry ids and policy numbers only: never an email address, a name,
a password or a code (history is encrypted anyway; this keeps it harmless too).
"""

# No ``from __future__ import annotations`` here: the SDK's converter calls
# ``typing.get_type_hints`` on these classes for every payload it decodes, and string
# annotations would be compiled again each time (visible in the worker's profile).
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class RetrySpec:
    initial_interval_seconds: float
    backoff_coefficient: float
    maximum_interval_seconds: float
    schedule_to_close_seconds: float
    attempt_timeout_seconds: float

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=self.initial_interval_seconds),
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=timedelta(seconds=self.maximum_interval_seconds),
            maximum_attempts=0,  # bounded by schedule_to_close instead
        )


@dataclass(frozen=True)
class EmailRoute:
    """Where and how one kind of email is sent."""

    kind: str
    task_queue: str
    retry: RetrySpec


@dataclass(frozen=True)
class IssuedCode:
    delivery_id: str
    expires_at_epoch: float


@dataclass(frozen=True)
class CodeFlowInput:
    """Input of the registration and password-reset workflows."""

    user_id: str
    purpose: str
    code_length: int
    code_ttl_seconds: int
    code_email: EmailRoute
    notification_email: EmailRoute
    # The first code, when the API issued it with the account (in the same transaction):
    # the flow sends it at once instead of issuing one first. Absent in flows started
    # before this field existed, and for password resets and re-started flows.
    first_code: IssuedCode | None = None


@dataclass(frozen=True)
class NotificationInput:
    user_id: str
    template: str
    email: EmailRoute


@dataclass(frozen=True)
class VerifiedSignal:
    needs_approval: bool = False


@dataclass(frozen=True)
class IssueCodeInput:
    user_id: str
    purpose: str
    kind: str
    workflow_id: str
    code_length: int
    code_ttl_seconds: int


@dataclass(frozen=True)
class SendCodeInput:
    delivery_id: str
    kind: str
    workflow_id: str


@dataclass(frozen=True)
class DeliveryOutcome:
    """What a send activity reports: ``delivered`` or ``skipped`` (code no longer live)."""

    status: str


@dataclass(frozen=True)
class MarkDeliveryInput:
    delivery_id: str
    state: str
    error: str | None = None


@dataclass(frozen=True)
class SendNotificationInput:
    user_id: str
    template: str
    kind: str


@dataclass(frozen=True)
class DeliveryProgressSignal:
    delivery_id: str
    state: str


# -- the one email pipeline ------------------------------------------------------------


@dataclass(frozen=True)
class SendEmailInput:
    """Input of ``SendEmailWorkflow``: send one email of a declared type to one user.

    ``context``: the template's values, ids and plain data only (never a secret: a code
    is unsealed from its delivery record by the send activity).  ``delivery_id``: a
    record already written (by the API, in its transaction); None: the workflow writes
    it first.
    """

    email_type: str
    user_id: str
    route: EmailRoute
    context: dict[str, Any] = field(default_factory=dict)
    delivery_id: str | None = None


@dataclass(frozen=True)
class CreateDeliveryInput:
    delivery_id: str
    email_type: str
    user_id: str
    workflow_id: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryRef:
    """Input of the send activity: the record says everything else."""

    delivery_id: str


@dataclass(frozen=True)
class SettleDeliveryInput:
    """A workflow's verdict on a delivery: ``failed`` (gave up), ``expired``, ``cancelled``."""

    delivery_id: str
    state: str
    summary: str | None = None


# -- quizzes ----------------------------------------------------------------------------

# The activity that grades an attempt's saved answers at its deadline (registered under
# this name by ``activities.quizzes``; the workflow refers to it by name only).
CLOSE_QUIZ_ATTEMPT = "close_quiz_attempt"


@dataclass(frozen=True)
class QuizAttemptInput:
    """A timed attempt: closed at ``deadline_epoch`` unless its learner submits first.

    With ``result_email`` (absent in runs started before it existed), an attempt closed
    by the deadline is followed by its result email, sent on that route."""

    attempt_id: str
    deadline_epoch: float
    user_id: str = ""
    course_id: str = ""
    result_email: EmailRoute | None = None


@dataclass(frozen=True)
class CloseAttemptInput:
    attempt_id: str


GRADED_LEARNER_LEFT = "graded_learner_left"


@dataclass(frozen=True)
class CloseAttemptOutcome:
    """``graded`` (closed at its deadline: by this call, or before it by whatever else,
    the result email still owed), ``graded_learner_left`` (the same, its learner had
    left the course: no result email), ``already_closed`` (its learner submitted) or
    ``missing``."""

    status: str
    passed: bool | None = None
    # ``graded``: what the result email shows (no answers), for the workflow to send.
    result: dict[str, Any] | None = None
