"""Inputs, results and signals of the learning workflows (one frozen dataclass each).

Ids and policy numbers only: never an email address, a name or a lesson's text.
"""

# No ``from __future__ import annotations``: see workflows/inputs.py.
from dataclasses import dataclass, field

from workflows.inputs import EmailRoute


class LearningEmail:
    """The learning emails (template names; a user may turn off the last two)."""

    ENROLLED = "course_enrolled"
    LESSON_OPENED = "lesson_opened"
    REMINDER = "inactivity_reminder"
    CERTIFICATE = "course_certificate"


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


@dataclass(frozen=True)
class LearningEmailInput:
    template: str
    user_id: str
    course_id: str
    enrollment_id: str = ""
    certificate_id: str = ""
    # lesson_opened: the drip day whose lessons are announced.
    day: int = 0


@dataclass(frozen=True)
class CertificateFlowInput:
    certificate_id: str
    user_id: str
    course_id: str
    email: EmailRoute
