"""The console's Courses page: every course with its status and learners, filter by
status, archive; one course's learners with their progress and its quizzes'
statistics; a quiz's questions and attempts (never an answer key)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from api.console.pages import PAGE_SIZE
from authflow.quizzes.models import QuizAttempt
from tests.browser.console_client import ConsoleClient
from tests.browser.playwright_expect import expect
from tests.browser.shots import screenshot
from tests.browser.test_console_browser import sign_in_as_admin
from tests.learning_calls import API, complete, enroll, instructor, learner, published_course
from tests.quiz_calls import ALL_RIGHT, HALF_RIGHT, SECRETS, QuizSetup, quiz_body, quiz_course
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack

pytestmark = pytest.mark.browser


async def test_courses_page_lists_filters_and_archives(
    stack: Stack, console: ConsoleClient
) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{}, {}])
    await enroll(stack, student, course["id"])
    await complete(stack, student, lessons[0]["id"])
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303

    page = await console.get("/admin/courses", params={"status": "published"})
    assert page.status_code == 200
    assert course["title"] in page.text and owner.email in page.text
    assert 'href="/admin/courses"' in page.text  # in the navigation
    drafts = await console.get("/admin/courses", params={"status": "draft"})
    assert course["title"] not in drafts.text

    learners = await console.get(f"/admin/courses/{course['id']}")
    assert learners.status_code == 200
    row = re.search(rf'data-email="{re.escape(student.email)}".*?</tr>', learners.text, re.S)
    assert row is not None and "1 / 2 (50 %)" in row.group(0)

    done = await console.post(f"/admin/courses/{course['id']}/archive", {"back": "/admin/courses"})
    assert done.status_code == 303
    archived = await stack.http.get(f"{API}/courses/{course['id']}", headers=owner.headers)
    assert archived.json()["status"] == "archived"
    assert (await console.get("/admin/courses/nonexistent-id")).status_code == 404


async def test_courses_page_needs_courses_manage(stack: Stack, console: ConsoleClient) -> None:
    r = await console.get("/admin/courses")
    assert r.status_code == 303  # no session: to the sign-in page


# -- quizzes --------------------------------------------------------------------------

HOSTILE = '<img src=x onerror="window.__xss=1">'


async def quiz_with_attempts(stack: Stack) -> QuizSetup:
    """A quiz whose lesson title and first prompt are markup, with three attempts: one
    passed (6/6), one failed (3/6) and one open, by two learners."""
    setup = await quiz_course(stack)
    r = await stack.http.patch(
        f"{API}/lessons/{setup.lesson_id}",
        json={"title": f"Final {HOSTILE}"},
        headers=stack.bearer(setup.owner),
    )
    assert r.status_code == 200, r.text
    body = quiz_body()
    body["questions"][0]["prompt"] = f"Capital {HOSTILE}?"
    assert (await setup.put_quiz(body)).status_code == 200
    first = (await setup.start()).json()["id"]
    await setup.save(first, ALL_RIGHT)
    assert (await setup.submit(first)).json()["passed"] is True
    other = await setup.add_learner()
    second = (await setup.start(other)).json()["id"]
    await setup.save(second, HALF_RIGHT, other)
    assert (await setup.submit(second, other)).json()["passed"] is False
    assert (await setup.start(other)).status_code == 201
    return setup


def row_of(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr [^>]*{attribute}="{re.escape(value)}".*?</tr>', html, re.S)
    assert match is not None, f"no row {attribute}={value}"
    return match.group(0)


def cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


async def test_a_course_page_shows_its_quizzes_statistics_and_attempts(
    stack: Stack, console: ConsoleClient
) -> None:
    setup = await quiz_with_attempts(stack)
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303

    page = await console.get(f"/admin/courses/{setup.course_id}")
    assert page.status_code == 200
    row = row_of(page.text, "data-quiz", setup.quiz_id)
    # lesson, version, attempts, learners, graded, pass rate (the instructor's stats)
    assert cells(row)[1:6] == ["1", "3", "2", "2", "50 %"], cells(row)
    assert "Final &lt;img" in row and HOSTILE not in page.text

    quiz = await console.get(f"/admin/courses/{setup.course_id}/quizzes/{setup.quiz_id}")
    assert quiz.status_code == 200
    assert HOSTILE not in quiz.text and "Capital &lt;img" in quiz.text
    stats = (await setup.stats()).json()
    assert (stats["attempts"], stats["learners"]) == (3, 2)
    for q in stats["questions"]:
        rate = f"{q['correct_rate'] * 100:.0f} %"
        assert cells(row_of(quiz.text, "data-question", q["id"]))[4] == rate
    assert cells(row_of(quiz.text, "data-question", "sky"))[4] == "50 %"
    passed = cells(row_of(quiz.text, "data-email", setup.learner["email"]))
    assert passed[1:3] == ["1", "submitted"] and passed[6:] == [
        "learner",
        "6 / 6 (100 %)",
        "passed",
    ]
    other = setup.learners[0]["email"]
    rows = re.findall(
        rf'<tr data-attempt="[^"]+" data-email="{re.escape(other)}".*?</tr>', quiz.text, re.S
    )
    assert sorted(cells(r)[2] for r in rows) == ["open", "submitted"]
    assert any(cells(r)[7:] == ["3 / 6 (50 %)", "failed"] for r in rows)
    # Never an answer key nor a learner's answer (options are not shown at all).
    assert not any(secret.lower() in quiz.text.lower() for secret in SECRETS)
    assert "Lyon" not in quiz.text

    elsewhere = await quiz_course(stack)
    wrong = await console.get(f"/admin/courses/{elsewhere.course_id}/quizzes/{setup.quiz_id}")
    assert wrong.status_code == 404
    assert (await console.get(f"/admin/courses/{setup.course_id}/quizzes/x%00y")).status_code == 404


async def test_a_quizs_attempts_are_paged(stack: Stack, console: ConsoleClient) -> None:
    setup = await quiz_course(stack)
    assert (await setup.put_quiz()).status_code == 200
    for _ in range(PAGE_SIZE + 2):
        attempt_id = (await setup.start()).json()["id"]
        assert (await setup.submit(attempt_id)).status_code == 200
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    path = f"/admin/courses/{setup.course_id}/quizzes/{setup.quiz_id}"
    first = await console.get(path)
    numbers = [int(cells(r)[1]) for r in re.findall(r"<tr data-attempt=.*?</tr>", first.text, re.S)]
    assert numbers == list(range(PAGE_SIZE + 2, 2, -1))  # newest first
    assert f"1\u2013{PAGE_SIZE} of {PAGE_SIZE + 2}" in first.text  # the pager
    second = await console.get(path, params={"offset": PAGE_SIZE})
    rest = [int(cells(r)[1]) for r in re.findall(r"<tr data-attempt=.*?</tr>", second.text, re.S)]
    assert rest == [2, 1]


async def test_a_quiz_page_needs_a_console_session(stack: Stack, console: ConsoleClient) -> None:
    r = await console.get("/admin/courses/some-course/quizzes/some-quiz")
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")


async def test_from_a_course_to_its_quiz_in_chromium(stack: Stack, page: Any) -> None:
    setup = await quiz_with_attempts(stack)
    await sign_in_as_admin(page)
    await page.goto(f"/admin/courses/{setup.course_id}")
    row = page.locator(f'tr[data-quiz="{setup.quiz_id}"]')
    await expect(row).to_contain_text(f"Final {HOSTILE}")  # shown as text, not markup
    await expect(row.locator("td").nth(5)).to_have_text("50 %")
    await screenshot(page, stack, "course-quizzes")

    await row.get_by_role("link", name="Questions & attempts").click()
    await expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    await expect(page.locator("#stat-attempts")).to_have_text("3")
    await expect(page.locator("#stat-pass-rate")).to_have_text("50 %")
    await expect(page.locator('tr[data-question="sky"] td').nth(4)).to_have_text("50 %")
    await expect(page.locator("#attempts tbody tr")).to_have_count(3)
    await expect(page.locator('#attempts tr[data-state="open"]')).to_have_count(1)
    await expect(page.get_by_role("link", name="Courses", exact=True).first).to_be_visible()
    assert await page.evaluate("window.__xss") is None
    await screenshot(page, stack, "quiz-attempts")


async def test_an_open_attempt_past_its_deadline_reads_overdue(
    stack: Stack, console: ConsoleClient
) -> None:
    """Its workflow is late (here: it has none). The page says so and closes nothing."""
    setup = await quiz_course(stack)
    assert (await setup.put_quiz()).status_code == 200
    attempt_id = (await setup.start()).json()["id"]
    async with stack.db.session() as session:
        await session.execute(
            update(QuizAttempt)
            .where(QuizAttempt.id == attempt_id)
            .values(deadline=datetime.now(UTC) - timedelta(minutes=5))
        )
        await session.commit()
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    page = await console.get(f"/admin/courses/{setup.course_id}/quizzes/{setup.quiz_id}")
    assert cells(row_of(page.text, "data-attempt", attempt_id))[2] == "overdue"
    async with stack.db.session() as session:
        assert (await session.get(QuizAttempt, attempt_id)).state == "open"  # type: ignore[union-attr]
