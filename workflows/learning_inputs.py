"""Inputs, results and signals of the learning workflows (one frozen dataclass each).

Ids, policy numbers and what an email's template shows (a course title, lesson titles):
never an email address or a secret.
"""

# No ``from __future__ import annotations``: see workflows/inputs.py.
from dataclasses import dataclass, field

from workflows.inputs import EmailRoute


@dataclass(frozen=True)
class DripState:
    """What an enrollment's workflow carries over ``continue_as_new``."""

    # Lessons opening up to this many days after enrolment have been announced.
    announced_through_day: int = 0
    last_drip_email_epoch: float = 0.0
    reminders_sent: int = 0
    last_reminder_epoch: float = 0.0


@dataclass(frozen=True)
class EnrollmentFlowInput:
    enrollment_id: str
    course_id: str
    user_id: str
    reminder_days: int
    # The notification queue: where this workflow and its plan activity run.
    email: EmailRoute
    # None on the first run (it sends the enrolment email); set when continued as new.
    state: DripState | None = None


@dataclass(frozen=True)
class EnrollmentPlanRequest:
    enrollment_id: str


@dataclass(frozen=True)
class EnrollmentPlan:
    """The enrollment as the database has it when the workflow wakes."""

    active: bool
    completed: bool
    enrolled_at_epoch: float
    last_activity_epoch: float
    # Distinct ``release_after_days`` of the course's lessons, ascending.
    release_days: list[int] = field(default_factory=list)
    course_title: str = ""
    course_url: str = ""
    # Release day (as a string: JSON keys) -> the titles of the lessons opening then.
    titles_by_day: dict[str, str] = field(default_factory=dict)
    # Reminders this enrollment has had in all its runs (leaving and enrolling again
    # starts a new run): the contract's "at most 3" is per enrollment.  Histories
    # recorded before the field read 0.
    reminders_sent: int = 0
