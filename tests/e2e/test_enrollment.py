"""Enrollment, completion, progress and certificates through the real chain (HTTP ->
database -> Temporal -> worker -> SMTP sink)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.learning import LearningActivities
from api.flows import SendEmail
from authflow.courses.emails import INACTIVITY_REMINDER
from authflow.courses.models import Certificate
from authflow.models import EmailDelivery
from devtools.mailsink import StoredMessage
from tests.e2e.test_rbac_matrix import Member
from tests.learning_calls import (
    API,
    add_lesson,
    complete,
    enroll,
    instructor,
    learner,
    published_course,
)
from tests.stack import Stack, eventually
from workflows.learning_inputs import EnrollmentPlanRequest

pytestmark = pytest.mark.e2e


async def certificates_of(stack: Stack, course_id: str) -> int:
    async with stack.db.session() as session:
        issued = await session.scalar(
            select(func.count()).select_from(Certificate).where(Certificate.course_id == course_id)
        )
    return int(issued or 0)


async def test_enroll_is_idempotent_and_refuses_drafts_and_paid_courses(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack, "Ada Learner")
    course, _ = await published_course(stack, owner)
    first = await stack.http.post(f"{API}/courses/{course['id']}/enroll", headers=student.headers)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "active"
    assert set(first.json()) >= {"id", "course_id", "status", "enrolled_at"}
    again = await stack.http.post(f"{API}/courses/{course['id']}/enroll", headers=student.headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    # The enrolment email (the enrollment's workflow sends it).
    mail = await stack.wait_for_mail(student.email, subject="You are enrolled")
    assert course["title"] in mail.text

    async def enrollment_flows() -> list[str]:
        query = f'AuthflowKind="enrollment" AND AuthflowCourseId="{course["id"]}"'
        return [w.id async for w in stack.client.list_workflows(query)]

    # Searchable in the Web UI by course: exactly one flow for the one enrollment.
    assert await eventually(enrollment_flows) == [f"enrollment-{first.json()['id']}"]

    draft = (
        await stack.http.post(f"{API}/courses", json={"title": "Draft"}, headers=owner.headers)
    ).json()
    r = await stack.http.post(f"{API}/courses/{draft['id']}/enroll", headers=student.headers)
    assert r.status_code == 404
    paid, _ = await published_course(stack, owner, price_cents=1900, currency="eur")
    assert paid["currency"] == "EUR"
    r = await stack.http.post(f"{API}/courses/{paid['id']}/enroll", headers=student.headers)
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "payment_required"
    r = await stack.http.post(f"{API}/courses/{course['id']}/enroll")
    assert r.status_code == 401


async def test_progress_leave_and_reenrol_keeps_it(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{}, {}, {}], modules=2)
    await enroll(stack, student, course["id"])
    # Outline order: module 0 holds lessons 0 and 2, module 1 holds lesson 1.
    order = [lessons[0]["id"], lessons[2]["id"], lessons[1]["id"]]
    r = await stack.http.post(f"{API}/lessons/{order[0]}/complete", headers=student.headers)
    assert r.status_code == 200, r.text
    assert r.json()["progress"] == {"completed": 1, "total": 3, "percent": 33}
    r = await stack.http.post(f"{API}/lessons/{order[0]}/complete", headers=student.headers)
    assert r.json()["progress"]["completed"] == 1  # idempotent
    progress = (
        await stack.http.get(f"{API}/me/courses/{course['id']}/progress", headers=student.headers)
    ).json()
    assert progress["completed_lesson_ids"] == [order[0]]
    assert progress["next_lesson_id"] == order[1]
    assert progress["certificate_id"] is None
    lesson = (await stack.http.get(f"{API}/lessons/{order[0]}", headers=student.headers)).json()
    assert lesson["completed"] is True

    mine = (await stack.http.get(f"{API}/me/enrollments", headers=student.headers)).json()
    entry = next(e for e in mine["items"] if e["course_id"] == course["id"])
    assert entry["progress"] == {"completed": 1, "total": 3, "percent": 33}

    r = await stack.http.delete(f"{API}/courses/{course['id']}/enroll", headers=student.headers)
    assert r.status_code == 204
    r = await stack.http.get(f"{API}/lessons/{order[1]}", headers=student.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_enrolled"
    r = await stack.http.post(f"{API}/lessons/{order[1]}/complete", headers=student.headers)
    assert r.status_code == 403
    r = await stack.http.get(f"{API}/me/courses/{course['id']}/progress", headers=student.headers)
    assert r.status_code == 403

    r = await stack.http.post(f"{API}/courses/{course['id']}/enroll", headers=student.headers)
    assert r.status_code == 201
    progress = (
        await stack.http.get(f"{API}/me/courses/{course['id']}/progress", headers=student.headers)
    ).json()
    assert progress["completed_lesson_ids"] == [order[0]]

    learners = (
        await stack.http.get(f"{API}/courses/{course['id']}/enrollments", headers=owner.headers)
    ).json()
    [row] = [x for x in learners["items"] if x["user_id"] == student.id]
    assert row["progress"]["completed"] == 1
    assert row["last_activity_at"]


async def test_locked_and_quiz_lessons(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(
        stack, owner, lessons=[{}, {"release_after_days": 3}, {"kind": "quiz"}]
    )
    enrollment = await enroll(stack, student, course["id"])
    locked = lessons[1]["id"]
    r = await stack.http.get(f"{API}/lessons/{locked}", headers=student.headers)
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "lesson_locked"
    r = await stack.http.post(f"{API}/lessons/{locked}/complete", headers=student.headers)
    assert r.json()["error"]["code"] == "lesson_locked"
    r = await stack.http.post(f"{API}/lessons/{lessons[2]['id']}/complete", headers=student.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "quiz_required"
    outline = (
        await stack.http.get(f"{API}/courses/{course['id']}", headers=student.headers)
    ).json()
    [opening] = [
        x["available_at"] for m in outline["modules"] for x in m["lessons"] if x["id"] == locked
    ]
    assert datetime.fromisoformat(opening) == datetime.fromisoformat(error["available_at"])
    enrolled = datetime.fromisoformat(enrollment["enrolled_at"])
    assert datetime.fromisoformat(opening) - enrolled == timedelta(days=3)
    assert outline["enrollment"]["id"] == enrollment["id"]
    # The owner reads it at any time; a stranger may read only a preview lesson.
    assert (
        await stack.http.get(f"{API}/lessons/{locked}", headers=owner.headers)
    ).status_code == 200


async def test_preview_lessons_are_open_to_any_signed_in_user(stack: Stack) -> None:
    owner = await instructor(stack)
    visitor = await learner(stack)
    _, lessons = await published_course(stack, owner, lessons=[{"preview": True}, {}])
    r = await stack.http.get(f"{API}/lessons/{lessons[0]['id']}", headers=visitor.headers)
    assert r.status_code == 200
    r = await stack.http.get(f"{API}/lessons/{lessons[1]['id']}", headers=visitor.headers)
    assert r.status_code == 403
    assert (await stack.http.get(f"{API}/lessons/{lessons[0]['id']}")).status_code == 401


async def test_two_tabs_completing_the_last_lesson_issue_one_certificate(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack, "Grace Hopper")
    course, lessons = await published_course(stack, owner, lessons=[{}, {}])
    await enroll(stack, student, course["id"])
    mark = stack.sink.last_id
    responses = await asyncio.gather(
        *(
            stack.http.post(f"{API}/lessons/{lesson['id']}/complete", headers=student.headers)
            for lesson in (lessons[0], lessons[1], lessons[1], lessons[0])
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert max(r.json()["progress"]["percent"] for r in responses) == 100
    assert await certificates_of(stack, course["id"]) == 1
    progress = (
        await stack.http.get(f"{API}/me/courses/{course['id']}/progress", headers=student.headers)
    ).json()
    assert progress["percent"] == 100
    assert progress["completed_at"]
    certificate_id = progress["certificate_id"]
    r = await stack.http.get(f"{API}/certificates/{certificate_id}")
    assert r.status_code == 200
    assert r.json()["learner_name"] == "Grace Hopper"
    assert r.json()["course_title"] == course["title"]
    page = await stack.http.get(f"/certificates/{certificate_id}")
    assert page.status_code == 200
    assert "Grace Hopper" in page.text
    assert (await stack.http.get(f"{API}/certificates/nope")).status_code == 404

    mail = await stack.wait_for_mail(student.email, after_id=mark, subject="Your certificate")
    link = f"{stack.settings.public_base_url}/certificates/{certificate_id}"
    assert link in mail.text
    assert "List-Unsubscribe" not in dict(mail.header_items())
    # The completion's email is found in the Web UI by the course, like its enrollment.
    query = f'AuthflowCourseId="{course["id"]}" AND AuthflowKind="notification"'

    async def by_course() -> list[str] | None:
        ids = [wf.id async for wf in stack.client.list_workflows(query)]
        return ids or None

    found = await eventually(by_course)
    assert found is not None and any(certificate_id in wf for wf in found), found
    # Completing again changes nothing and sends nothing more.
    r = await stack.http.post(f"{API}/lessons/{lessons[0]['id']}/complete", headers=student.headers)
    assert r.status_code == 200
    await asyncio.sleep(1.0)
    certificates = [
        m
        for m in stack.sink.messages
        if m.id > mark and m.is_to(student.email) and "certificate" in m.subject.lower()
    ]
    assert len(certificates) == 1


async def test_a_deleted_lesson_no_longer_counts(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{}, {}, {}])
    await enroll(stack, student, course["id"])
    await stack.http.post(f"{API}/lessons/{lessons[0]['id']}/complete", headers=student.headers)
    r = await stack.http.delete(f"{API}/lessons/{lessons[0]['id']}", headers=owner.headers)
    assert r.status_code == 204
    progress = (
        await stack.http.get(f"{API}/me/courses/{course['id']}/progress", headers=student.headers)
    ).json()
    assert (progress["completed"], progress["total"]) == (0, 2)


async def _progress(stack: Stack, member: Member, course_id: str) -> dict[str, Any]:
    r = await stack.http.get(f"{API}/me/courses/{course_id}/progress", headers=member.headers)
    assert r.status_code == 200, r.text
    progress: dict[str, Any] = r.json()
    return progress


def _certificate_mails(stack: Stack, member: Member, after_id: int) -> list[StoredMessage]:
    return [
        m
        for m in stack.sink.messages
        if m.id > after_id and m.is_to(member.email) and "certificate" in m.subject.lower()
    ]


@pytest.mark.parametrize("deleted", ["lesson", "module"])
async def test_deleting_the_last_lesson_not_done_completes_the_course(
    stack: Stack, deleted: str
) -> None:
    """A learner who has done every lesson but the one the owner deletes (or the module
    holding it) completes the course then: completed_at, one certificate, one email."""
    owner = await instructor(stack)
    done, halfway, pending = [await learner(stack, n) for n in ("Ada L", "Bob M", "Cy N")]
    course, lessons = await published_course(stack, owner, lessons=[{}, {}, {}], modules=2)
    first, second, third = lessons  # modules: [first, third], [second]
    for member in (done, halfway, pending):
        await enroll(stack, member, course["id"])
    for lesson in (first, third):
        await complete(stack, done, lesson["id"])
    await complete(stack, halfway, first["id"])
    mark = stack.sink.last_id
    url = (
        f"{API}/lessons/{second['id']}"
        if deleted == "lesson"
        else f"{API}/modules/{second['module_id']}"
    )
    r = await stack.http.delete(url, headers=owner.headers)
    assert r.status_code == 204, r.text

    progress = await _progress(stack, done, course["id"])
    assert (progress["completed"], progress["total"], progress["percent"]) == (2, 2, 100)
    assert progress["completed_at"] and progress["certificate_id"], progress
    r = await stack.http.get(f"{API}/certificates/{progress['certificate_id']}")
    assert r.status_code == 200
    assert (r.json()["learner_name"], r.json()["course_title"]) == ("Ada L", course["title"])
    mail = await stack.wait_for_mail(done.email, after_id=mark, subject="Your certificate")
    assert f"{stack.settings.public_base_url}/certificates/{progress['certificate_id']}" in (
        mail.text
    )
    for member in (halfway, pending):  # not every remaining lesson: not completed
        progress = await _progress(stack, member, course["id"])
        assert progress["percent"] < 100
        assert progress["completed_at"] is None and progress["certificate_id"] is None

    # Once: completing again, or a later deletion, issues and sends nothing more.
    extra = await add_lesson(stack, owner, first["module_id"])
    await complete(stack, done, extra["id"])
    r = await stack.http.delete(f"{API}/lessons/{extra['id']}", headers=owner.headers)
    assert r.status_code == 204
    assert await certificates_of(stack, course["id"]) == 1
    await asyncio.sleep(1.0)
    assert len(_certificate_mails(stack, done, mark)) == 1
    assert not _certificate_mails(stack, halfway, mark)
    assert not _certificate_mails(stack, pending, mark)


async def test_a_deletion_racing_the_last_completion_still_completes(stack: Stack) -> None:
    """The learner completes one lesson while the owner deletes the other: whichever
    commits first, the course ends completed (neither side misses the other)."""
    owner = await instructor(stack)
    student = await learner(stack)
    for _ in range(4):
        course, (kept, dropped) = await published_course(stack, owner, lessons=[{}, {}])
        await enroll(stack, student, course["id"])
        done, deleted = await asyncio.gather(
            stack.http.post(f"{API}/lessons/{kept['id']}/complete", headers=student.headers),
            stack.http.delete(f"{API}/lessons/{dropped['id']}", headers=owner.headers),
        )
        assert (done.status_code, deleted.status_code) == (200, 204), (done.text, deleted.text)
        progress = await _progress(stack, student, course["id"])
        assert progress["percent"] == 100
        assert progress["completed_at"] and progress["certificate_id"], progress


async def test_deleting_every_lesson_completes_nobody(stack: Stack) -> None:
    """A course left with no lesson is not completed (0 of 0 is not 100 %)."""
    owner = await instructor(stack)
    student = await learner(stack)
    course, lessons = await published_course(stack, owner, lessons=[{}])
    await enroll(stack, student, course["id"])
    mark = stack.sink.last_id
    r = await stack.http.delete(f"{API}/lessons/{lessons[0]['id']}", headers=owner.headers)
    assert r.status_code == 204
    progress = await _progress(stack, student, course["id"])
    assert (progress["total"], progress["percent"]) == (0, 0)
    assert progress["completed_at"] is None and progress["certificate_id"] is None
    await asyncio.sleep(1.0)
    assert not _certificate_mails(stack, student, mark)


async def test_the_plan_counts_an_enrollments_reminders_over_all_its_runs(stack: Stack) -> None:
    """ "At most 3 reminders per enrollment" holds across leaving and enrolling again (a
    new workflow run): the plan a run reads counts the reminder emails of every run of
    the enrollment from their delivery records, and no other enrollment's.  (The
    workflow's side, on the time-skipping server: tests/unit/test_learning_workflows.py.)
    """
    owner = await instructor(stack)
    student = await learner(stack)
    course, _ = await published_course(stack, owner)
    other, _ = await published_course(stack, owner)
    enrollment = await enroll(stack, student, course["id"])
    elsewhere = await enroll(stack, student, other["id"])
    context = {"course_title": course["title"], "course_url": "https://example.test/c"}
    # The keys the enrollment workflow gives its reminders: enrollment, run, number.
    keys = [
        f"{enrollment['id']}-{uuid.uuid4()}-reminder-1",
        f"{enrollment['id']}-{uuid.uuid4()}-reminder-1",  # the run after re-enrolling
        f"{elsewhere['id']}-{uuid.uuid4()}-reminder-1",
    ]
    for key in keys:
        await stack.app.state.services.flows.send_email(
            SendEmail(INACTIVITY_REMINDER, student.id, key=key, context=context)
        )

    async def all_delivered() -> bool:
        async with stack.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(EmailDelivery)
                .where(
                    EmailDelivery.user_id == student.id,
                    EmailDelivery.email_type == INACTIVITY_REMINDER.name,
                    EmailDelivery.state == "delivered",
                )
            )
        return count == len(keys)

    await eventually(all_delivered, timeout=60)
    plans = LearningActivities(stack.db)
    plan = await plans.load_enrollment_plan(EnrollmentPlanRequest(enrollment["id"]))
    assert plan.reminders_sent == 2
    plan = await plans.load_enrollment_plan(EnrollmentPlanRequest(elsewhere["id"]))
    assert plan.reminders_sent == 1
