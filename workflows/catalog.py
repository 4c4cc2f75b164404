"""Every workflow type, for the workers to register: ``ALL_WORKFLOWS`` on every email
queue, ``QUIZ_WORKFLOWS`` on the quiz-attempts queue."""

from workflows.broadcast import BroadcastWorkflow
from workflows.enrollment import EnrollmentWorkflow
from workflows.notification import NotificationWorkflow
from workflows.password_reset import PasswordResetWorkflow
from workflows.quiz_attempt import QuizAttemptWorkflow
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

# The quiz-attempts queue's own worker runs only these.
QUIZ_WORKFLOWS: tuple[type, ...] = (QuizAttemptWorkflow,)
