"""Courses through the real chain: create, slug, versions, publish/archive/delete rules,
the catalogue (search, sort, cursors), Markdown sanitising and the outline."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from authflow.courses import catalogue
from authflow.courses.catalogue import decode_cursor, encode_cursor
from authflow.courses.models import CatalogueSnapshot
from authflow.models import utcnow
from tests.learning_calls import (
    API,
    add_lesson,
    add_module,
    create_course,
    enroll,
    instructor,
    learner,
    published_course,
    put_quiz,
)
from tests.stack import Stack

pytestmark = pytest.mark.e2e


async def test_create_patch_with_versions_and_unique_slugs(stack: Stack) -> None:
    owner = await instructor(stack)
    title = f"Éclair Baking {uuid.uuid4().hex[:6]}"
    first = await create_course(stack, owner, title=title, tags=["Food"], price_cents=0)
    second = await create_course(stack, owner, title=title)
    assert first["status"] == "draft"
    assert first["slug"].startswith("eclair-baking-")
    assert second["slug"] == first["slug"] + "-2"
    assert first["version"] == 1

    url = f"{API}/courses/{first['id']}"
    r = await stack.http.patch(
        url, json={"summary": "Choux"}, headers={**owner.headers, "If-Match": "1"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    stale = await stack.http.patch(
        url, json={"summary": "Other"}, headers={**owner.headers, "If-Match": "1"}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "version_conflict"
    # Without If-Match the write is accepted (last writer wins, as documented).
    r = await stack.http.patch(url, json={"level": "beginner"}, headers=owner.headers)
    assert r.json()["version"] == 3
    # "*" matches whatever version is current (RFC 9110).
    r = await stack.http.patch(
        url, json={"level": "advanced"}, headers={**owner.headers, "If-Match": "*"}
    )
    assert r.status_code == 200 and r.json()["version"] == 4, r.text
    r = await stack.http.patch(
        url, json={"level": "beginner"}, headers={**owner.headers, "If-Match": "one"}
    )
    assert r.status_code == 412
    # By slug too, for the owner while it is a draft.
    r = await stack.http.get(f"{API}/courses/{first['slug']}", headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["summary"] == "Choux"


async def test_publish_needs_a_lesson_and_drafts_are_hidden(stack: Stack) -> None:
    owner = await instructor(stack)
    other = await learner(stack)
    course = await create_course(stack, owner)
    r = await stack.http.post(f"{API}/courses/{course['id']}/publish", headers=owner.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "course_empty"
    assert (await stack.http.get(f"{API}/courses/{course['id']}")).status_code == 404
    assert (
        await stack.http.get(f"{API}/courses/{course['id']}", headers=other.headers)
    ).status_code == 404
    module = await add_module(stack, owner, course["id"])
    await add_lesson(stack, owner, module)
    r = await stack.http.post(f"{API}/courses/{course['id']}/publish", headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "published"
    assert (await stack.http.get(f"{API}/courses/{course['id']}")).status_code == 200


async def test_publish_needs_every_quiz_lesson_to_have_its_quiz(stack: Stack) -> None:
    """A quiz lesson completes only by passing its quiz: published without one, nobody
    could complete the course.  Checked when publishing (docs/learning.md)."""
    owner = await instructor(stack)
    course = await create_course(stack, owner)
    module = await add_module(stack, owner, course["id"])
    await add_lesson(stack, owner, module)
    second = await add_module(stack, owner, course["id"])
    late = await add_lesson(stack, owner, second, kind="quiz", title="Final exam")
    first = await add_lesson(stack, owner, module, kind="quiz", title="Warm-up quiz")
    publish = f"{API}/courses/{course['id']}/publish"
    r = await stack.http.post(publish, headers=owner.headers)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert (error["code"], error["lesson_id"]) == ("quiz_missing", first["id"])
    assert "Warm-up quiz" in error["message"]
    assert (await stack.http.get(f"{API}/courses/{course['id']}")).status_code == 404
    await put_quiz(stack, owner, first["id"])
    r = await stack.http.post(publish, headers=owner.headers)
    assert (r.status_code, r.json()["error"]["lesson_id"]) == (409, late["id"])
    await put_quiz(stack, owner, late["id"])
    r = await stack.http.post(publish, headers=owner.headers)
    assert (r.status_code, r.json()["status"]) == (200, "published")
    schema = (await stack.http.get("/openapi.json")).json()
    documented = schema["paths"]["/api/v1/courses/{course_id}/publish"]["post"]["responses"]
    assert "quiz_missing" in documented["409"]["description"]


async def test_delete_and_archive_rules(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    empty = await create_course(stack, owner)
    r = await stack.http.delete(f"{API}/courses/{empty['id']}", headers=owner.headers)
    assert r.status_code == 204
    assert (
        await stack.http.get(f"{API}/courses/{empty['id']}", headers=owner.headers)
    ).status_code == 404

    course, lessons = await published_course(stack, owner)
    await enroll(stack, student, course["id"])
    r = await stack.http.delete(f"{API}/courses/{course['id']}", headers=owner.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "course_has_enrollments"
    r = await stack.http.post(f"{API}/courses/{course['id']}/archive", headers=owner.headers)
    assert r.json()["status"] == "archived"
    # Hidden from the catalogue and from strangers, kept for its learner.
    assert (await stack.http.get(f"{API}/courses/{course['id']}")).status_code == 404
    r = await stack.http.get(f"{API}/courses/{course['id']}", headers=student.headers)
    assert r.status_code == 200
    r = await stack.http.get(f"{API}/lessons/{lessons[0]['id']}", headers=student.headers)
    assert r.status_code == 200
    newcomer = await learner(stack)
    r = await stack.http.post(f"{API}/courses/{course['id']}/enroll", headers=newcomer.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "course_archived"


async def test_markdown_is_rendered_and_sanitised(stack: Stack) -> None:
    owner = await instructor(stack)
    nasty = (
        "# Title\n\n**bold** <script>alert(1)</script>\n\n"
        '<img src="x" onerror="alert(2)">\n\n[click](javascript:alert(3)) '
        '<a href="https://example.com" onclick="x()">ok</a> <a href="JavaScript:y()">raw</a>'
    )
    course = await create_course(stack, owner, description=nasty)
    html = course["description_html"]
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert course["description"] == nasty  # stored as written
    lowered = html.lower()
    for bad in ("<script", "onerror", "onclick", 'href="javascript'):
        assert bad not in lowered, bad
    assert 'href="https://example.com"' in html


async def _all_pages(stack: Stack, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await stack.http.get(f"{API}/courses", params=query)
        assert r.status_code == 200, r.text
        ids += [c["id"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids


async def test_catalogue_search_is_case_and_accent_insensitive(stack: Stack) -> None:
    owner = await instructor(stack)
    marker = uuid.uuid4().hex[:8]
    course, _ = await published_course(
        stack, owner, title=f"Crème Brûlée {marker}", summary="Caramélisé", tags=["Dessert"]
    )
    for q in (f"creme brulee {marker}", f"CRÈME {marker}", f"brûlée {marker}"):
        r = await stack.http.get(f"{API}/courses", params={"q": q})
        assert [c["id"] for c in r.json()["items"]] == [course["id"]], q
    r = await stack.http.get(f"{API}/courses", params={"q": "caramelise", "tag": "dessert"})
    assert course["id"] in [c["id"] for c in r.json()["items"]]
    r = await stack.http.get(f"{API}/courses", params={"q": f"100% {marker}"})
    assert r.json()["items"] == []  # LIKE wildcards are escaped
    r = await stack.http.get(f"{API}/courses", params={"q": marker, "level": "advanced"})
    assert r.json()["items"] == []


@pytest.mark.parametrize("sort", ["newest", "title", "popular"])
async def test_cursors_never_repeat_nor_skip_while_courses_are_added(
    stack: Stack, sort: str
) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    tag = f"t{uuid.uuid4().hex[:8]}"
    existing = [
        (await published_course(stack, owner, title=f"{chr(66 + i)} {tag}", tags=[tag]))[0]["id"]
        for i in range(5)
    ]
    params: dict[str, str | int] = {"tag": tag, "sort": sort, "limit": 2}
    r = await stack.http.get(f"{API}/courses", params=params)
    seen = [c["id"] for c in r.json()["items"]]
    cursor = r.json()["next_cursor"]
    assert cursor
    # Meanwhile: new courses (one sorting first by title) and popularity changes.
    await published_course(stack, owner, title=f"A {tag}", tags=[tag])
    await enroll(stack, student, existing[-1])
    while cursor:
        r = await stack.http.get(f"{API}/courses", params={**params, "cursor": cursor})
        assert r.status_code == 200, r.text
        seen += [c["id"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    assert len(seen) == len(set(seen)), "a course was shown twice"
    assert set(existing) <= set(seen), "a course that existed at the first page was skipped"


def _snapshot_of(cursor: str) -> str:
    return str(decode_cursor(cursor, "popular")["snap"])


async def _snapshot_rows(stack: Stack) -> int:
    async with stack.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(CatalogueSnapshot)) or 0)


async def _walk(stack: Stack, params: dict[str, Any], cursor: str | None) -> list[str]:
    ids: list[str] = []
    while cursor:
        r = await stack.http.get(f"{API}/courses", params={**params, "cursor": cursor})
        assert r.status_code == 200, r.text
        ids += [c["id"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
    return ids


async def test_identical_popular_first_pages_share_one_snapshot(stack: Stack) -> None:
    """An anonymous first page stores no snapshot of its own: 100 identical ones store
    one, and so do other spellings of the same filters."""
    owner = await instructor(stack)
    tag = f"t{uuid.uuid4().hex[:8]}"
    for i in range(3):
        await published_course(stack, owner, title=f"{i} {tag}", tags=[tag])
    before = await _snapshot_rows(stack)
    params: dict[str, Any] = {"tag": tag, "sort": "popular", "limit": 1}
    snapshots = set()
    for _ in range(100):
        r = await stack.http.get(f"{API}/courses", params=params)
        snapshots.add(_snapshot_of(r.json()["next_cursor"]))
    r = await stack.http.get(f"{API}/courses", params={**params, "tag": tag.upper()})
    snapshots.add(_snapshot_of(r.json()["next_cursor"]))
    assert len(snapshots) == 1
    assert await _snapshot_rows(stack) == before + 1


async def test_a_shared_popular_snapshot_never_repeats_nor_skips(stack: Stack) -> None:
    """While counts change, first pages of the same filters share a recent snapshot; one
    read after a course was published holds it too, and every walk shows each course
    that existed at its first page exactly once."""
    owner = await instructor(stack)
    students = [await learner(stack) for _ in range(2)]
    tag = f"t{uuid.uuid4().hex[:8]}"
    existing = [
        (await published_course(stack, owner, title=f"{i} {tag}", tags=[tag]))[0]["id"]
        for i in range(4)
    ]
    params: dict[str, Any] = {"tag": tag, "sort": "popular", "limit": 2}

    async def first_page() -> tuple[list[str], str]:
        r = await stack.http.get(f"{API}/courses", params=params)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]], r.json()["next_cursor"]

    seen_a, cursor_a = await first_page()
    await enroll(stack, students[0], existing[-1])  # the last one moves to the top
    rows = await _snapshot_rows(stack)
    seen_b, cursor_b = await first_page()
    assert _snapshot_of(cursor_b) == _snapshot_of(cursor_a)  # reused: nothing written
    assert await _snapshot_rows(stack) == rows
    added = (await published_course(stack, owner, title=f"9 {tag}", tags=[tag]))[0]["id"]
    seen_c, cursor_c = await first_page()
    assert _snapshot_of(cursor_c) != _snapshot_of(cursor_a)  # it lacked the new course
    await enroll(stack, students[1], existing[0])
    await published_course(stack, owner, title=f"8 {tag}", tags=[tag])
    for seen, cursor, expected in (
        (seen_a, cursor_a, existing),
        (seen_b, cursor_b, existing),
        (seen_c, cursor_c, [*existing, added]),
    ):
        seen = seen + await _walk(stack, params, cursor)
        assert len(seen) == len(set(seen)), "a course was shown twice"
        assert set(expected) <= set(seen), "a course that existed at the first page was skipped"


async def test_snapshots_are_bounded_and_refreshed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SNAPSHOT_MAX_ROWS the stalest snapshot goes (its cursor: 422, start again);
    an expired one is pruned; reusing an old one keeps its cursors alive."""
    owner = await instructor(stack)
    tags = [f"t{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for tag in tags:
        for i in range(2):
            await published_course(stack, owner, title=f"{i} {tag}", tags=[tag])
    async with stack.db.session() as session, session.begin():
        session.add(CatalogueSnapshot(course_ids=["x"], created_at=utcnow() - timedelta(days=2)))
    monkeypatch.setattr(catalogue, "SNAPSHOT_MAX_ROWS", 2)
    cursors = []
    for tag in tags:
        r = await stack.http.get(
            f"{API}/courses", params={"tag": tag, "sort": "popular", "limit": 1}
        )
        cursors.append(r.json()["next_cursor"])
    assert await _snapshot_rows(stack) == 2
    gone = await stack.http.get(f"{API}/courses", params={"sort": "popular", "cursor": cursors[0]})
    assert gone.status_code == 422
    assert gone.json()["error"]["code"] == "invalid_cursor"
    for cursor in cursors[1:]:
        r = await stack.http.get(f"{API}/courses", params={"sort": "popular", "cursor": cursor})
        assert r.status_code == 200, r.text

    old = utcnow() - timedelta(hours=23)
    async with stack.db.session() as session, session.begin():
        await session.execute(
            update(CatalogueSnapshot)
            .where(CatalogueSnapshot.id == _snapshot_of(cursors[2]))
            .values(created_at=old)
        )
    r = await stack.http.get(
        f"{API}/courses", params={"tag": tags[2], "sort": "popular", "limit": 1}
    )
    assert _snapshot_of(r.json()["next_cursor"]) == _snapshot_of(cursors[2])
    async with stack.db.session() as session:
        kept = await session.get(CatalogueSnapshot, _snapshot_of(cursors[2]))
        assert kept is not None and kept.created_at > old + timedelta(hours=22)


async def test_bad_cursor_and_limits_are_422(stack: Stack) -> None:
    for params in ({"cursor": "garbage!"}, {"limit": 0}, {"limit": 101}, {"sort": "x"}):
        r = await stack.http.get(f"{API}/courses", params=params)
        assert r.status_code == 422, params
        assert "code" in r.json()["error"]
    newest = await stack.http.get(f"{API}/courses", params={"limit": 1})
    if newest.json()["next_cursor"]:
        r = await stack.http.get(
            f"{API}/courses", params={"sort": "title", "cursor": newest.json()["next_cursor"]}
        )
        assert r.status_code == 422


async def test_crafted_cursors_are_422_on_every_keyset_list(stack: Stack) -> None:
    """A cursor is the client's to send back: a moment without a time zone, a NUL
    (PostgreSQL refuses it in text), a nested value or an unknown snapshot is a 422,
    never a 500."""
    owner = await instructor(stack)
    student = await learner(stack)
    course, _ = await published_course(stack, owner, lessons=[{}])
    naive: dict[str, Any] = {"k": "2020-01-01T00:00:00", "i": "x"}  # a title key, not a time
    crafted: list[dict[str, Any]] = [
        {"k": "2020-01-01T00:00:00+00:00", "i": "x\x00y"},
        {"k": ["2020"], "i": "x"},
        {"k": "2020-01-01T00:00:00+00:00", "i": {"a": 1}},
        {"k": "2020-01-01T00:00:00+00:00", "i": "x" * 500},
    ]
    lists = [
        (f"{API}/courses", "newest", {"sort": "newest"}, None),
        (f"{API}/courses", "title", {"sort": "title"}, None),
        (f"{API}/me/enrollments", "mine", {}, student.headers),
        (f"{API}/courses/{course['id']}/enrollments", "learners", {}, owner.headers),
    ]
    for url, sort, params, headers in lists:
        for fields in [*crafted, *([naive] if sort != "title" else [])]:
            cursor = encode_cursor({"s": sort, **fields})
            r = await stack.http.get(url, params={**params, "cursor": cursor}, headers=headers)
            assert r.status_code == 422, (url, fields, r.text)
            assert r.json()["error"]["code"] in ("invalid_cursor", "validation_error")
    for fields in ({"snap": "x\x00", "o": 0}, {"snap": "nope", "o": True}):
        cursor = encode_cursor({"s": "popular", **fields})
        r = await stack.http.get(f"{API}/courses", params={"sort": "popular", "cursor": cursor})
        assert r.status_code == 422, (fields, r.text)


async def test_outline_takes_a_fixed_number_of_statements(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    small, _ = await published_course(stack, owner, lessons=[{}], modules=1)
    big, _ = await published_course(stack, owner, lessons=[{}] * 12, modules=4)
    await enroll(stack, student, small["id"])
    await enroll(stack, student, big["id"])
    engine = stack.app.state.services.db.engine.sync_engine
    counts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The outbox relay and the session's "last used" stamp share the engine but do
        # not depend on the course: they are not the outline's statements.
        if "pending_flows" not in statement and "UPDATE sessions" not in statement:
            counts[-1] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        for course in (small, big):
            counts.append(0)
            r = await stack.http.get(f"{API}/courses/{course['id']}", headers=student.headers)
            assert r.status_code == 200
        for limit in (1, 100):  # one course or every course of the run: same statements
            counts.append(0)
            r = await stack.http.get(f"{API}/courses", params={"limit": limit})
            assert r.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1], f"outline statements grow with lessons: {counts}"
    assert counts[2] == counts[3]
    big_outline = await stack.http.get(f"{API}/courses/{big['id']}")
    assert sum(len(m["lessons"]) for m in big_outline.json()["modules"]) == 12


async def test_module_and_lesson_ordering(stack: Stack) -> None:
    owner = await instructor(stack)
    course = await create_course(stack, owner)
    m1 = await add_module(stack, owner, course["id"], "one")
    m2 = await add_module(stack, owner, course["id"], "two")
    r = await stack.http.put(
        f"{API}/courses/{course['id']}/modules/order",
        json={"ids": [m2, m1]},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["modules"]] == [m2, m1]
    r = await stack.http.put(
        f"{API}/courses/{course['id']}/modules/order", json={"ids": [m1]}, headers=owner.headers
    )
    assert r.status_code == 422
    a = await add_lesson(stack, owner, m1, title="a")
    b = await add_lesson(stack, owner, m1, title="b")
    c = await add_lesson(stack, owner, m1, title="c", position=0)
    r = await stack.http.get(f"{API}/courses/{course['id']}", headers=owner.headers)
    module = next(m for m in r.json()["modules"] if m["id"] == m1)
    assert [x["id"] for x in module["lessons"]] == [c["id"], a["id"], b["id"]]
    r = await stack.http.put(
        f"{API}/modules/{m1}/lessons/order",
        json={"ids": [b["id"], a["id"], c["id"]]},
        headers=owner.headers,
    )
    assert [x["id"] for x in r.json()["items"]] == [b["id"], a["id"], c["id"]]
    r = await stack.http.delete(f"{API}/modules/{m1}", headers=owner.headers)
    assert r.status_code == 204
    assert (
        await stack.http.get(f"{API}/lessons/{a['id']}", headers=owner.headers)
    ).status_code == 404


async def test_lesson_validation(stack: Stack) -> None:
    owner = await instructor(stack)
    course = await create_course(stack, owner)
    module = await add_module(stack, owner, course["id"])
    for bad in (
        {"title": "x", "kind": "video", "video_url": "http://insecure.example/v"},
        {"title": "x", "kind": "video", "video_url": "javascript:alert(1)"},
        {"title": "x", "kind": "text", "release_after_days": 366},
        {"title": "x", "kind": "text", "release_after_days": -1},
        {"title": "x", "kind": "podcast"},
        {"title": "", "kind": "text"},
        {"title": "x\u0000", "kind": "text"},
    ):
        r = await stack.http.post(
            f"{API}/modules/{module}/lessons", json=bad, headers=owner.headers
        )
        assert r.status_code == 422, bad
    ok = await add_lesson(
        stack,
        owner,
        module,
        kind="video",
        video_url="https://videos.example/1",
        duration_seconds=60,
    )
    assert ok["video_url"] == "https://videos.example/1"


async def test_a_video_lesson_needs_its_video_url(stack: Stack) -> None:
    """On create, and a PATCH may not clear it (a text lesson's may be cleared)."""
    owner = await instructor(stack)
    course = await create_course(stack, owner)
    module = await add_module(stack, owner, course["id"])
    for bad in (
        {"title": "x", "kind": "video"},
        {"title": "x", "kind": "video", "video_url": None},
    ):
        r = await stack.http.post(
            f"{API}/modules/{module}/lessons", json=bad, headers=owner.headers
        )
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["type"] for d in error["details"]] == ["video_url_required"]
    video = await add_lesson(
        stack, owner, module, kind="video", video_url="https://videos.example/2"
    )
    url = f"{API}/lessons/{video['id']}"
    r = await stack.http.patch(url, json={"video_url": None}, headers=owner.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["type"] for d in error["details"]] == ["video_url_required"]
    r = await stack.http.patch(url, json={"title": "Renamed"}, headers=owner.headers)
    assert (r.status_code, r.json()["video_url"]) == (200, "https://videos.example/2")
    r = await stack.http.patch(
        url, json={"video_url": "https://videos.example/3"}, headers=owner.headers
    )
    assert (r.status_code, r.json()["video_url"]) == (200, "https://videos.example/3")
    text = await add_lesson(stack, owner, module, video_url="https://videos.example/4")
    r = await stack.http.patch(
        f"{API}/lessons/{text['id']}", json={"video_url": None}, headers=owner.headers
    )
    assert (r.status_code, r.json()["video_url"]) == (200, None)


async def test_titles_are_trimmed_and_never_blank(stack: Stack) -> None:
    owner = await instructor(stack)
    for blank in ("   ", "\u3000", " \u00a0 "):
        r = await stack.http.post(f"{API}/courses", json={"title": blank}, headers=owner.headers)
        assert r.status_code == 422, (blank, r.text)
        assert [d["type"] for d in r.json()["error"]["details"]] == ["blank_title"]
    tag = uuid.uuid4().hex[:6]
    course = await create_course(stack, owner, title=f"  Trimmed {tag}  ")
    assert (course["title"], course["slug"]) == (f"Trimmed {tag}", f"trimmed-{tag}")
    url = f"{API}/courses/{course['id']}"
    r = await stack.http.patch(url, json={"title": "  "}, headers=owner.headers)
    assert r.status_code == 422, r.text
    r = await stack.http.patch(url, json={"title": " Renamed "}, headers=owner.headers)
    assert (r.status_code, r.json()["title"]) == (200, "Renamed")
    r = await stack.http.post(f"{url}/modules", json={"title": " "}, headers=owner.headers)
    assert r.status_code == 422, r.text
    module = await add_module(stack, owner, course["id"], title=" Module one ")
    r = await stack.http.post(
        f"{API}/modules/{module}/lessons",
        json={"title": " ", "kind": "text"},
        headers=owner.headers,
    )
    assert r.status_code == 422, r.text
    lesson = await add_lesson(stack, owner, module, title=" Lesson one ")
    assert lesson["title"] == "Lesson one"
    outline = (await stack.http.get(url, headers=owner.headers)).json()
    assert outline["modules"][0]["title"] == "Module one"
