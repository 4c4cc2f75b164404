"""The console's Courses page: every course with its status and learners, filter by
status, archive; one course's learners with their progress."""

from __future__ import annotations

import re

import pytest

from tests.browser.console_client import ConsoleClient
from tests.learning_calls import API, complete, enroll, instructor, learner, published_course
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
