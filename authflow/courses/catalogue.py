"""The public catalogue: published courses, filtered, sorted, paged by cursor.

Cursors never show a course twice nor skip one that existed at the first page, even
while courses are added:
- ``newest`` and ``title`` page by keyset (the last row's sort key and id): a course
  added later sorts before the cursor (newest) or is simply met in its place (title).
- ``popular`` counts change while a learner pages, so its order is frozen at the first
  page in a ``CatalogueSnapshot``; the cursor names the snapshot and an offset.

A first page is public and anonymous, so it must not store a snapshot per request
(``_snapshot_for``): one is shared by every first page it serves, and the table is
bounded.
- Its id is a digest of the filters and of the frozen order, so the same order for the
  same filters is found again and nothing is written.
- While popularity moves (every enrolment may reorder the listing), a snapshot of the
  same filters frozen less than ``SNAPSHOT_REUSE`` ago is reused as long as it holds every
  course that matches now: its order is a little older, but paging it still never
  repeats a course nor skips one that existed at the first page.  So a listing writes at
  most one snapshot per ``SNAPSHOT_REUSE`` while counts change, and none while they do
  not; a course published meanwhile makes a new one at once.
- At most ``SNAPSHOT_MAX_ROWS`` are kept: storing one prunes the expired ones and, past
  the cap, the stalest; a cursor whose snapshot is gone answers 422 ``invalid_cursor``
  (start again), never a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.courses.models import CatalogueSnapshot, Course, CourseStatus
from authflow.courses.text import like_pattern, normalise
from authflow.errors import InvalidCursor
from authflow.models import utcnow

Sort = Literal["newest", "title", "popular"]
# A popular listing's frozen order: at most this many courses, kept this long after it
# was last handed out (refreshed at most every SNAPSHOT_REFRESH, so a cursor lives at
# least SNAPSHOT_TTL - SNAPSHOT_REFRESH).
SNAPSHOT_MAX_ITEMS = 10_000
SNAPSHOT_TTL = timedelta(hours=24)
SNAPSHOT_REFRESH = timedelta(hours=1)
# A snapshot this recent serves the same filters' first pages while it holds every
# course that matches now (popularity may have moved since).
SNAPSHOT_REUSE = timedelta(seconds=60)
# At most this many snapshots are kept (about 370 KB each at SNAPSHOT_MAX_ITEMS).
SNAPSHOT_MAX_ROWS = 200


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    tag: str | None = None
    level: str | None = None


@dataclass(frozen=True)
class Page:
    items: Sequence[Course]
    next_cursor: str | None


def encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor() from exc
    if not isinstance(data, dict) or data.get("s") != sort:
        raise InvalidCursor()
    # A cursor comes back from the client and its values reach SQL: only what this
    # module writes into one (strings as long as a sort key, numbers) is let through.
    # PostgreSQL refuses a NUL in text itself, which would make it a 500.
    for value in data.values():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidCursor()
        if isinstance(value, str) and (len(value) > 400 or "\x00" in value):
            raise InvalidCursor()
    return data


def cursor_time(after: dict[str, Any]) -> datetime:
    """The sort key of a cursor that pages by time: an aware ISO 8601 moment."""
    try:
        moment = datetime.fromisoformat(str(after["k"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor() from exc
    if moment.tzinfo is None:
        raise InvalidCursor()
    return moment


def _filtered(filters: Filters) -> Select[Course]:
    query = select(Course).where(Course.status == CourseStatus.PUBLISHED)
    # Every word of ``q`` must appear (in any order) in the title or the summary.
    for term in normalise(filters.q or "").split()[:10]:
        query = query.where(Course.search_text.like(like_pattern(term), "\\"))
    if filters.tag:
        query = query.where(Course.tags_key.like(like_pattern(f"|{normalise(filters.tag)}|"), "\\"))
    if filters.level:
        query = query.where(Course.level == filters.level)
    return query


async def catalogue(
    db: AsyncSession, filters: Filters, sort: Sort, limit: int, cursor: str | None
) -> Page:
    if sort == "popular":
        return await _popular(db, filters, limit, cursor)
    query = _filtered(filters)
    after = decode_cursor(cursor, sort) if cursor else None
    if sort == "newest":
        if after is not None:
            at = cursor_time(after)
            query = query.where(
                or_(
                    Course.published_at < at,
                    and_(Course.published_at == at, Course.id < str(after.get("i"))),
                )
            )
        query = query.order_by(Course.published_at.desc(), Course.id.desc())
    else:
        if after is not None:
            key, last = str(after.get("k")), str(after.get("i"))
            query = query.where(
                or_(Course.title_key > key, and_(Course.title_key == key, Course.id > last))
            )
        query = query.order_by(Course.title_key, Course.id)
    rows = (await db.scalars(query.limit(limit + 1))).all()
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last_item = items[-1]
        key_value = (
            last_item.published_at.isoformat()
            if sort == "newest" and last_item.published_at
            else last_item.title_key
        )
        next_cursor = encode_cursor({"s": sort, "k": key_value, "i": last_item.id})
    return Page(items, next_cursor)


async def _popular(db: AsyncSession, filters: Filters, limit: int, cursor: str | None) -> Page:
    if cursor is None:
        ids = list(
            (
                await db.scalars(
                    _filtered(filters)
                    .with_only_columns(Course.id)
                    .order_by(Course.enrollment_count.desc(), Course.published_at.desc(), Course.id)
                    .limit(SNAPSHOT_MAX_ITEMS)
                )
            ).all()
        )
        offset = 0
        snapshot_id = None
        if len(ids) > limit:
            snapshot_id, ids = await _snapshot_for(db, filters, ids)
    else:
        after = decode_cursor(cursor, "popular")
        frozen = await db.get(CatalogueSnapshot, str(after.get("snap")))
        position = after.get("o")
        if frozen is None or not isinstance(position, int) or position < 0:
            raise InvalidCursor("This cursor has expired or is not valid; start again.")
        ids, snapshot_id, offset = list(frozen.course_ids), frozen.id, position
    window = ids[offset : offset + limit]
    found = {
        c.id: c
        for c in await db.scalars(
            select(Course).where(Course.id.in_(window), Course.status == CourseStatus.PUBLISHED)
        )
    }
    items = [found[i] for i in window if i in found]  # unpublished since: left out
    has_more = offset + limit < len(ids)
    next_cursor = (
        encode_cursor({"s": "popular", "snap": snapshot_id, "o": offset + limit})
        if has_more
        else None
    )
    return Page(items, next_cursor)


def _digest(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _filters_key(filters: Filters) -> str:
    """The same for every spelling ``_filtered`` treats alike."""
    terms = normalise(filters.q or "").split()[:10]
    return _digest([terms, normalise(filters.tag or ""), filters.level or ""])


async def _snapshot_for(
    db: AsyncSession, filters: Filters, ids: list[str]
) -> tuple[str, list[str]]:
    """The snapshot a first page's cursor names, and the order it froze (``ids``, the
    live order, or a recent order of the same filters holding every one of them)."""
    now = utcnow()
    prefix = _filters_key(filters)
    snapshot_id = prefix + _digest(ids)  # 32 hex digits: the id column takes 36
    stored = await db.scalar(
        select(CatalogueSnapshot.created_at).where(CatalogueSnapshot.id == snapshot_id)
    )
    if stored is not None:  # this very order: nothing to write
        if stored < now - SNAPSHOT_REFRESH:  # keep the cursors about to be handed out alive
            await db.execute(
                update(CatalogueSnapshot)
                .where(CatalogueSnapshot.id == snapshot_id)
                .values(created_at=now)
            )
        return snapshot_id, ids
    recent = await db.scalar(
        select(CatalogueSnapshot)
        .where(
            # The filters' snapshots (an index range on the id, then the exact prefix).
            CatalogueSnapshot.id.between(prefix + "0" * 16, prefix + "f" * 16),
            CatalogueSnapshot.id.startswith(prefix),
            CatalogueSnapshot.created_at >= now - SNAPSHOT_REUSE,
        )
        .order_by(CatalogueSnapshot.created_at.desc())
        .limit(1)
    )
    if recent is not None and set(ids) <= set(recent.course_ids):
        return recent.id, list(recent.course_ids)
    await _store(db, snapshot_id, ids, now)
    return snapshot_id, ids


async def _store(db: AsyncSession, snapshot_id: str, ids: list[str], now: datetime) -> None:
    """Stores a snapshot (a concurrent identical first page may store it first), after
    pruning the expired ones and, past ``SNAPSHOT_MAX_ROWS``, the stalest."""
    await db.execute(
        delete(CatalogueSnapshot).where(CatalogueSnapshot.created_at < now - SNAPSHOT_TTL)
    )
    kept = int(await db.scalar(select(func.count()).select_from(CatalogueSnapshot)) or 0)
    if kept >= SNAPSHOT_MAX_ROWS:
        stalest = (
            select(CatalogueSnapshot.id)
            .order_by(CatalogueSnapshot.created_at, CatalogueSnapshot.id)
            .limit(kept - SNAPSHOT_MAX_ROWS + 1)
        )
        await db.execute(delete(CatalogueSnapshot).where(CatalogueSnapshot.id.in_(stalest)))
    values = {"id": snapshot_id, "course_ids": ids, "created_at": now}
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(
            postgresql.insert(CatalogueSnapshot).values(values).on_conflict_do_nothing()
        )
    else:
        await db.execute(sqlite.insert(CatalogueSnapshot).values(values).on_conflict_do_nothing())
