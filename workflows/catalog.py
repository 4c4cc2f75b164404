"""Every workflow type, for the workers to register (on every email queue)."""

from workflows.broadcast import BroadcastWorkflow
from workflows.enrollment import EnrollmentWorkflow
from workflows.notification import NotificationWorkflow
from workflows.password_reset import PasswordResetWorkflow
from workflows.registration import RegistrationWorkflow
from workflows.send_email import SendEmailWorkflow

ALL_WORKFLOWS: tuple[type, ...] = (
    RegistrationWorkflow,
    PasswordResetWorkflow,
    SendEmailWorkflow,
    NotificationWorkflow,
    EnrollmentWorkflow,
    BroadcastWorkflow,
)
