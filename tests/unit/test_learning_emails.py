"""The learning emails are declared on the one pipeline: templates in files (text +
HTML), the notification queue, an opt-out (hence List-Unsubscribe) only for drip notices
and reminders; titles and names are escaped in HTML."""

from __future__ import annotations

import pytest

from activities.templates import render
from authflow.courses import emails
from authflow.emails import EmailType, email_type
from authflow.policies import EmailKind, PreferenceCategory

CONTEXT = {
    "name": "Ada <b>",
    "course_title": "Crème & <script>",
    "course_url": "https://learn.example/courses/creme",
    "lessons": "Day 3 <i>",
    "certificate_url": "https://learn.example/certificates/c1",
    "unsubscribe_url": "https://learn.example/api/v1/unsubscribe?token=t",
}


@pytest.mark.parametrize(
    ("email", "opt_out"),
    [
        (emails.COURSE_ENROLLED, None),
        (emails.LESSON_OPENED, PreferenceCategory.COURSE_UPDATES),
        (emails.INACTIVITY_REMINDER, PreferenceCategory.REMINDERS),
        (emails.COURSE_CERTIFICATE, None),
    ],
)
def test_each_learning_email(email: EmailType, opt_out: PreferenceCategory | None) -> None:
    assert email_type(email.name) is email
    assert email.kind == EmailKind.NOTIFICATION
    assert email.task_queue == "email-notification"
    assert email.opt_out == opt_out
    rendered = render(email, CONTEXT)
    assert "Crème & <script>" in rendered.subject
    assert "Crème & <script>" in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    if email is emails.COURSE_CERTIFICATE:
        assert CONTEXT["certificate_url"] in rendered.text
    if opt_out is not None:
        assert CONTEXT["unsubscribe_url"] in rendered.text
