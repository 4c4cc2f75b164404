"""The public course page (``GET /courses/{slug}``), where the enrolment, drip and
reminder emails link: it answers for a published course, through the real chain from
the enrolment email's own link."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.learning_calls import API, enroll, instructor, learner, published_course
from tests.stack import Stack

pytestmark = pytest.mark.e2e


async def test_the_enrolment_emails_link_opens_the_course_page(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    description = "Ropes **and** hitches <script>alert(1)</script> [x](javascript:alert(1))"
    course, lessons = await published_course(
        stack, owner, lessons=[{}, {"preview": True}], title="Knots & <Splices>",
        summary="Tie them well", description=description,
    )  # fmt: skip
    mark = stack.sink.last_id
    await enroll(stack, student, course["id"])
    mail = await stack.wait_for_mail(student.email, after_id=mark, subject="You are enrolled")
    [link] = {u for u in re.findall(r"https?://\S+", mail.text) if "/courses/" in u}
    assert urlsplit(link).path == f"/courses/{course['slug']}"

    page = await stack.http.get(urlsplit(link).path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert "Knots &amp; &lt;Splices&gt;" in html and "<Splices>" not in html
    assert "Tie them well" in html and "<strong>and</strong>" in html
    assert "<script" not in html and 'href="javascript' not in html
    for lesson in lessons:
        assert lesson["title"] in html
    assert "(preview)" in html
    by_id = await stack.http.get(f"/courses/{course['id']}")
    assert by_id.status_code == 200 and "Tie them well" in by_id.text


async def test_drafts_and_unknown_keys_are_a_404_page(stack: Stack) -> None:
    owner = await instructor(stack)
    r = await stack.http.post(f"{API}/courses", json={"title": "Draft"}, headers=owner.headers)
    assert r.status_code == 201
    draft = r.json()
    for key in (draft["slug"], draft["id"], "no-such-course", "bad%00key", "x" * 500, "a.b"):
        page = await stack.http.get(f"/courses/{key}")
        assert page.status_code == 404, key
        assert "No such course" in page.text and "Draft" not in page.text


async def test_an_archived_course_page_says_so(stack: Stack) -> None:
    owner = await instructor(stack)
    course, _ = await published_course(stack, owner)
    r = await stack.http.post(f"{API}/courses/{course['id']}/archive", headers=owner.headers)
    assert r.status_code == 200
    page = await stack.http.get(f"/courses/{course['slug']}")
    assert page.status_code == 200
    assert "no longer takes new enrolments" in page.text
