"""Announcements through the real chain: API -> broadcast workflow -> SMTP sink -> records."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from authflow.courses.models import Course, Enrollment
from authflow.models import EmailDelivery, new_id
from devtools.mailsink import StoredMessage
from tests.e2e.test_rbac_matrix import Member, admin_headers, new_member
from tests.stack import Stack, eventually

pytestmark = pytest.mark.e2e

BASE = "/api/v1/announcements"


async def _role_with(stack: Stack, count: int) -> tuple[str, list[Member]]:
    """A fresh role and ``count`` new members holding it (and USER)."""
    role = f"CLUB_{secrets.token_hex(4).upper()}"
    admin = await admin_headers(stack)
    made = await stack.http.post(
        "/api/v1/admin/roles", json={"name": role, "permissions": []}, headers=admin
    )
    assert made.status_code == 201, made.text
    return role, [await new_member(stack, ["USER", role]) for _ in range(count)]


async def _finished(stack: Stack, announcement_id: str, headers: dict[str, str]) -> Any:
    async def check() -> Any:
        r = await stack.http.get(f"{BASE}/{announcement_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return body if body["state"] in ("done", "cancelled") else None

    return await eventually(check, timeout=60)


def _to(stack: Stack, member: Member, after: int, subject: str) -> list[StoredMessage]:
    return [
        m
        for m in stack.sink.messages
        if m.id > after and m.is_to(member.email) and m.subject == subject
    ]


async def test_a_role_announcement_reaches_each_member_once_minus_opted_out(
    stack: Stack,
) -> None:
    role, (reader, quitter) = await _role_with(stack, 2)
    outsider = await new_member(stack)
    off = await stack.http.put(
        "/api/v1/me/email-preferences", json={"announcements": False}, headers=quitter.headers
    )
    assert off.status_code == 200
    admin = await admin_headers(stack)
    mark = stack.sink.last_id
    subject = f"Club news {secrets.token_hex(3)}"
    r = await stack.http.post(
        BASE,
        json={
            "audience": {"kind": "role", "role": role},
            "subject": subject,
            "body": "# Hello\n\nA *new* term starts. <script>alert(1)</script>",
        },
        headers=admin,
    )
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["state"] == "sending" and created["total"] == 2

    done = await _finished(stack, created["id"], admin)
    assert done["state"] == "done"
    assert (done["total"], done["sent"], done["failed"], done["skipped"]) == (2, 1, 0, 1)
    # The Markdown as written, and rendered and sanitised (the contract's rule for it).
    assert done["body"].startswith("# Hello") and "<script>" in done["body"]
    assert "<h1>Hello</h1>" in done["body_html"] and "<em>new</em>" in done["body_html"]
    assert "<script" not in done["body_html"]
    assert done["sent"] + done["failed"] + done["skipped"] == done["total"]
    assert done["started_at"] and done["finished_at"]
    late = await stack.http.post(f"{BASE}/{created['id']}/cancel", headers=admin)
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"

    # One delivery record, the email pipeline's, for the one email sent.
    async with stack.db.session() as session:
        records = list(
            await session.scalars(
                select(EmailDelivery).where(
                    EmailDelivery.workflow_id == f"announcement-{created['id']}"
                )
            )
        )
    assert [(r.user_id, r.kind, r.state) for r in records] == [
        (reader.id, "announcement", "delivered")
    ]
    [message] = _to(stack, reader, mark, subject)
    assert not _to(stack, quitter, mark, subject)
    assert not _to(stack, outsider, mark, subject)
    assert "A *new* term starts." in message.text
    assert "<em>new</em>" in message.html and "<script>" not in message.html
    headers = dict(message.header_items())
    link = headers["List-Unsubscribe"].strip("<>")
    assert link.startswith(stack.settings.public_base_url.rstrip("/") + "/api/v1/unsubscribe?")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The code emails of the same users never carry it.
    codes = [m for m in stack.sink.messages if m.is_to(reader.email) and m.id <= mark]
    assert codes and all("List-Unsubscribe" not in dict(m.header_items()) for m in codes)
    # The link works, one click, no login (RFC 8058).
    path = link.removeprefix(stack.settings.public_base_url.rstrip("/"))
    click = await stack.http.post(path, content="List-Unsubscribe=One-Click")
    assert click.status_code == 200, click.text
    prefs = await stack.http.get("/api/v1/me/email-preferences", headers=reader.headers)
    assert prefs.json()["announcements"] is False


async def test_everyone_means_every_active_user_once(stack: Stack) -> None:
    first, second = await new_member(stack), await new_member(stack)
    admin = await admin_headers(stack)
    mark = stack.sink.last_id
    subject = f"To all {secrets.token_hex(3)}"
    r = await stack.http.post(
        BASE,
        json={"audience": {"kind": "all"}, "subject": subject, "body": "Maintenance tonight."},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    done = await _finished(stack, r.json()["id"], admin)
    assert done["state"] == "done" and done["failed"] == 0
    assert done["sent"] + done["skipped"] == done["total"] >= 2
    for member in (first, second):
        assert len(_to(stack, member, mark, subject)) == 1
    delivered = [m for m in stack.sink.messages if m.id > mark and m.subject == subject]
    assert len(delivered) == done["sent"]
    assert len({tuple(m.rcpt_tos) for m in delivered}) == len(delivered)


async def _course_of(stack: Stack, owner: Member, learners: list[Member]) -> str:
    course_id = new_id()
    async with stack.db.session() as session:
        session.add(Course(id=course_id, owner_id=owner.id, slug=f"c-{course_id}", title="Course"))
        await session.flush()
        for learner in learners:
            session.add(Enrollment(course_id=course_id, user_id=learner.id))
    return course_id


async def test_instructors_reach_only_their_own_courses(stack: Stack) -> None:
    teacher = await new_member(stack, ["INSTRUCTOR"])
    other_teacher = await new_member(stack, ["INSTRUCTOR"])
    learner, stranger = await new_member(stack), await new_member(stack)
    own = await _course_of(stack, teacher, [learner])
    theirs = await _course_of(stack, other_teacher, [stranger])

    def body(audience: dict[str, Any], subject: str = "Week 2") -> dict[str, Any]:
        return {"audience": audience, "subject": subject, "body": "Read chapter 2."}

    for audience in ({"kind": "all"}, {"kind": "role", "role": "USER"}):
        r = await stack.http.post(BASE, json=body(audience), headers=teacher.headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    for course in (theirs, "no-such-course"):
        r = await stack.http.post(
            BASE, json=body({"kind": "course", "course_id": course}), headers=teacher.headers
        )
        assert r.status_code == 403, r.text
    plain = await new_member(stack)
    r = await stack.http.post(
        BASE, json=body({"kind": "course", "course_id": own}), headers=plain.headers
    )
    assert r.status_code == 403

    mark = stack.sink.last_id
    subject = f"Week 2 {secrets.token_hex(3)}"
    r = await stack.http.post(
        BASE, json=body({"kind": "course", "course_id": own}, subject), headers=teacher.headers
    )
    assert r.status_code == 202, r.text
    done = await _finished(stack, r.json()["id"], teacher.headers)
    assert (done["total"], done["sent"]) == (1, 1)
    assert len(_to(stack, learner, mark, subject)) == 1
    assert not _to(stack, stranger, mark, subject)
    # The sender sees their own; another instructor does not.
    listed = await stack.http.get(BASE, headers=teacher.headers)
    assert [item["id"] for item in listed.json()["items"]] == [done["id"]]
    hidden = await stack.http.get(f"{BASE}/{done['id']}", headers=other_teacher.headers)
    assert hidden.status_code == 404


async def test_bad_announcements_are_422_and_write_nothing(stack: Stack) -> None:
    admin = await admin_headers(stack)
    before = (await stack.http.get(BASE, headers=admin, params={"limit": 100})).json()
    good = {"audience": {"kind": "all"}, "subject": "Hi", "body": "Text"}
    bad_bodies = [
        {**good, "subject": "Line\r\nBcc: x@example.com"},
        {**good, "subject": ""},
        {**good, "body": "   "},
        {**good, "audience": {"kind": "planet"}},
        {**good, "audience": {"kind": "role"}},
        {**good, "audience": {"kind": "role", "role": "NO_SUCH_ROLE"}},
        {**good, "audience": {"kind": "course", "course_id": "nope"}},
        # PostgreSQL refuses a NUL in text itself: still the client's 422, not a 500
        {**good, "audience": {"kind": "role", "role": "LEARNER\x00"}},
        {**good, "audience": {"kind": "course", "course_id": "c\x00"}},
        {**good, "send_at": "tomorrow"},
        {**good, "send_at": "2030-01-01T09:00:00"},
        {**good, "extra": 1},
        [1, 2],
    ]
    for bad in bad_bodies:
        r = await stack.http.post(BASE, json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert set(r.json()["error"]) >= {"code", "message"}
    after = (await stack.http.get(BASE, headers=admin, params={"limit": 100})).json()
    assert after["items"] == before["items"]
    r = await stack.http.get(BASE, headers=admin, params={"cursor": "not-a-cursor"})
    assert r.status_code == 422
    for action in ("", "/pause"):
        method = stack.http.get if not action else stack.http.post
        r = await method(f"{BASE}/a%00b{action}", headers=admin)
        assert r.status_code in (404, 422), r.text  # 404 where the database takes a NUL
        assert set(r.json()["error"]) >= {"code", "message"}
    assert (await stack.http.post(BASE, json=good)).status_code == 401


async def test_state_machine_of_a_scheduled_announcement(stack: Stack) -> None:
    admin = await admin_headers(stack)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await stack.http.post(
        BASE,
        json={"audience": {"kind": "all"}, "subject": "Later", "body": "x", "send_at": later},
        headers=admin,
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "scheduled"
    one = f"{BASE}/{r.json()['id']}"

    async def act(action: str, status: int, state: str | None = None) -> None:
        response = await stack.http.post(f"{one}/{action}", headers=admin)
        assert response.status_code == status, (action, response.text)
        if status == 409:
            assert response.json()["error"]["code"] == "invalid_state"
        if state is not None:
            assert response.json()["state"] == state

    await act("resume", 409)
    await act("pause", 200, "paused")
    await act("pause", 409)
    await act("resume", 200, "scheduled")
    await act("cancel", 200, "cancelled")
    for action in ("pause", "resume"):
        await act(action, 409)
    await act("cancel", 200, "cancelled")  # "from any state but done": nothing changes
    final = (await stack.http.get(one, headers=admin)).json()
    assert final["state"] == "cancelled" and final["sent"] == 0 and final["finished_at"]
    assert (await stack.http.post(f"{BASE}/nope/pause", headers=admin)).status_code == 404


async def test_pause_holds_sending_and_resume_sends_each_once(stack: Stack) -> None:
    role, members = await _role_with(stack, 6)
    admin = await admin_headers(stack)
    mark = stack.sink.last_id
    subject = f"Paused {secrets.token_hex(3)}"
    r = await stack.http.post(
        BASE,
        json={"audience": {"kind": "role", "role": role}, "subject": subject, "body": "b"},
        headers=admin,
    )
    assert r.status_code == 202
    one = f"{BASE}/{r.json()['id']}"
    paused = await stack.http.post(f"{one}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"

    async def sent_count() -> int:
        return sum(1 for m in stack.sink.messages if m.id > mark and m.subject == subject)

    # Sends already claimed may finish; then nothing more goes out while paused.
    async def settled() -> Any:
        body = (await stack.http.get(one, headers=admin)).json()
        first = await sent_count()
        return body if first == body["sent"] else None

    await eventually(settled, timeout=20)
    held = await sent_count()
    await asyncio.sleep(3.0)  # the point: nothing more goes out meanwhile
    assert await sent_count() == held
    assert (await stack.http.get(one, headers=admin)).json()["state"] == "paused"

    resumed = await stack.http.post(f"{one}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["state"] == "sending"
    done = await _finished(stack, r.json()["id"], admin)
    assert (done["state"], done["total"], done["sent"]) == ("done", 6, 6)
    for member in members:
        assert len(_to(stack, member, mark, subject)) == 1


async def test_cursor_pagination_lists_newest_first(stack: Stack) -> None:
    admin = await admin_headers(stack)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ids = []
    for n in range(3):
        r = await stack.http.post(
            BASE,
            json={"audience": {"kind": "all"}, "subject": f"P{n}", "body": "x", "send_at": later},
            headers=admin,
        )
        ids.append(r.json()["id"])
    first = (await stack.http.get(BASE, headers=admin, params={"limit": 2})).json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    second = (
        await stack.http.get(
            BASE, headers=admin, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["items"][0]["id"] == ids[0]
    for announcement_id in ids:
        await stack.http.post(f"{BASE}/{announcement_id}/cancel", headers=admin)
