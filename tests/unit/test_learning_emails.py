"""Learning emails: templates in files, text + HTML, List-Unsubscribe only on the kinds
users may turn off, names and titles escaped in HTML."""

from __future__ import annotations

import email
import email.policy

import pytest

from activities.learning import LearningEmails, build_email
from workflows.learning_inputs import LearningEmail

CONTEXT = {
    "name": "Ada <b>",
    "course": {"title": "Crème & <script>", "slug": "creme"},
    "course_url": "https://learn.example/courses/creme",
}


@pytest.mark.parametrize(
    ("template", "extra", "optional"),
    [
        (LearningEmail.ENROLLED, {}, False),
        (LearningEmail.LESSON_OPENED, {"lessons": ["Day 3"]}, True),
        (LearningEmail.REMINDER, {}, True),
        (
            LearningEmail.CERTIFICATE,
            {"certificate_url": "https://learn.example/certificates/c1"},
            False,
        ),
    ],
)
def test_each_learning_email(template: str, extra: dict[str, object], optional: bool) -> None:
    emails = LearningEmails("https://learn.example/")
    context = {**CONTEXT, **extra}
    if optional:
        context["unsubscribe_url"] = emails.unsubscribe_url("reminders")
    mail = emails.render(template, **context)
    assert "Crème & <script>" in mail.subject
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    outgoing = build_email(
        mail, sender="no-reply@authflow.local", recipient="ada@example.com", name="Ada"
    )
    parsed = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    assert parsed["To"] == "Ada <ada@example.com>"
    assert parsed.get_body(("plain",)) is not None
    assert parsed.get_body(("html",)) is not None
    if optional:
        assert (
            parsed["List-Unsubscribe"] == "<https://learn.example/unsubscribe?preference=reminders>"
        )
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert parsed["List-Unsubscribe"] is None
    if template == LearningEmail.CERTIFICATE:
        assert "https://learn.example/certificates/c1" in parsed.get_body(("plain",)).get_content()
