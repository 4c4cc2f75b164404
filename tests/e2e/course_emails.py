"""An email kind declared outside the platform's catalog, as a learning feature would:
the declaration, and its two templates in ``emails/``.  Imports only the declarations,
so workflow code (in the sandbox) may import it."""

from pathlib import Path

from authflow.emails import EmailType, declare
from authflow.policies import EmailKind, PreferenceCategory

COURSE_WELCOME = declare(
    EmailType(
        "test_course_welcome",
        EmailKind.NOTIFICATION,
        "Welcome to {{ course_title }}",
        opt_out=PreferenceCategory.COURSE_UPDATES,
        templates=Path(__file__).parent / "emails",
    )
)
