"""The learning emails, declared on the one email pipeline (``authflow.emails``): their
kind (the notification queue, its rate and retries), subject, template files
(``templates/<name>.txt|.html``) and the preference that may turn them off.

Standard library and ``authflow.emails`` only: workflows import these declarations.
"""

from pathlib import Path

from authflow.emails import EmailType, declare
from authflow.policies import EmailKind, PreferenceCategory

TEMPLATES = Path(__file__).parent / "templates"

COURSE_ENROLLED = declare(
    EmailType(
        "course_enrolled",
        EmailKind.NOTIFICATION,
        "You are enrolled in {{ course_title }}",
        templates=TEMPLATES,
    )
)
LESSON_OPENED = declare(
    EmailType(
        "lesson_opened",
        EmailKind.NOTIFICATION,
        "New lessons are open in {{ course_title }}",
        opt_out=PreferenceCategory.COURSE_UPDATES,
        templates=TEMPLATES,
    )
)
INACTIVITY_REMINDER = declare(
    EmailType(
        "inactivity_reminder",
        EmailKind.NOTIFICATION,
        "Pick up where you left off in {{ course_title }}",
        opt_out=PreferenceCategory.REMINDERS,
        templates=TEMPLATES,
    )
)
COURSE_CERTIFICATE = declare(
    EmailType(
        "course_certificate",
        EmailKind.NOTIFICATION,
        "Your certificate for {{ course_title }}",
        templates=TEMPLATES,
    )
)
