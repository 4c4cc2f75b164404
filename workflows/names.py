"""The names the API, the workflows and the workers agree on, declared once.

Imported by ``api`` to start and signal workflows by name, by ``workflows`` to call
activities by name, and by ``activities``/``workers`` to register them: nobody imports
another layer's code to learn a name.  Standard library only.
"""

from enum import StrEnum


class WorkflowName(StrEnum):
    REGISTRATION = "RegistrationWorkflow"
    PASSWORD_RESET = "PasswordResetWorkflow"
    SEND_EMAIL = "SendEmailWorkflow"
    # One per enrollment: drip emails, reminders (workflows/enrollment.py).
    ENROLLMENT = "EnrollmentWorkflow"
    # Runs started before every email had a delivery record (kept for runs in flight).
    NOTIFICATION = "NotificationWorkflow"


class SignalName(StrEnum):
    RESEND = "resend"
    VERIFIED = "verified"
    APPROVED = "approved"
    # The enrollment workflow: lessons moved (wake and re-plan); left or completed (end).
    LESSONS_CHANGED = "lessons_changed"
    ENDED = "ended"
    # Sent by the send activity of older workers only (kept for runs in flight).
    DELIVERY_PROGRESS = "delivery_progress"


class QueryName(StrEnum):
    PHASE = "phase"


class ActivityName(StrEnum):
    ISSUE_CODE = "issue_code"
    CREATE_DELIVERY = "create_delivery"
    SEND_EMAIL = "send_email"
    SETTLE_DELIVERY = "settle_delivery"
    LOAD_ENROLLMENT_PLAN = "load_enrollment_plan"
    # Called by runs begun before the one email pipeline (kept for runs in flight).
    SEND_CODE = "send_code"
    MARK_DELIVERY = "mark_delivery"
    SEND_NOTIFICATION = "send_notification"
