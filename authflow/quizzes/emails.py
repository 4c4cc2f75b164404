"""The quiz emails, declared on the one email pipeline (``authflow.emails``).

Standard library and ``authflow.emails`` only: workflows import these declarations.
"""

from pathlib import Path

from authflow.emails import EmailType, declare
from authflow.policies import EmailKind

QUIZ_RESULT = declare(
    EmailType(
        "quiz_result",
        EmailKind.NOTIFICATION,
        "Time is up: your result in {{ course_title }}",
        templates=Path(__file__).parent / "templates",
    )
)
