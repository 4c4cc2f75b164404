"""Data for the learning scenarios, written straight into the stack's database.

A thousand courses of a hundred lessons through the API would be 110,000 requests and
most of the run; the scenarios measure what learners do, not what authors did.  So the
bench inserts the rows itself, in batches (SQLAlchemy Core ``insert`` with many rows),
through ``authflow.db.Database``, which on SQLite takes the same cross-process writer
lock as the stack.  Every row is what the service layer would have written: the search
and sort keys come from ``authflow.courses.text``, a quiz definition is validated by
``QuizDefinition`` (ids assigned), a course is published with its lessons.

Learners are active users with a session each and an access token minted with the
stack's own ``JWT_SECRET`` (the bench starts the stack with it): two hundred logins
would cost two hundred password hashes and trip the per-address login limit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from authflow.courses.models import (
    Course,
    CourseLevel,
    CourseModule,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonKind,
)
from authflow.courses.text import normalise, search_text, slugify, tags_key
from authflow.db import Database
from authflow.models import Session, User, UserStatus, new_id, utcnow
from authflow.quizzes.definitions import QuizDefinition
from authflow.quizzes.models import Quiz, QuizVersion
from authflow.security.tokens import TokenService
from authflow.settings import Settings

BATCH = 2000  # rows per INSERT: well under SQLite's 32,766 bound parameters
MODULES_PER_COURSE = 10
LESSONS_PER_MODULE = 10
TOKEN_TTL_SECONDS = 6 * 3600  # outlives any run; the stack checks the session row anyway

_TOPICS = (
    "pastry", "bread", "sauces", "knife skills", "fermentation", "coffee", "chocolate",
    "pasta", "grilling", "vegetables", "spices", "wine", "cheese", "baking", "soups",
)  # fmt: skip
_LESSON_BODY = (
    "# {title}\n\nRead this **slowly**: the technique matters more than the recipe.\n\n"
    "1. Prepare the *mise en place*.\n2. Follow the steps in order.\n3. Taste, adjust.\n\n"
    "> A [reference](https://example.com/{n}) for the curious.\n"
)


@dataclass(frozen=True)
class Learner:
    user_id: str
    email: str
    token: str


@dataclass(frozen=True)
class QuizSeed:
    course_id: str
    lesson_id: str
    quiz_id: str
    definition: QuizDefinition


def token_service(jwt_secret: str) -> TokenService:
    """Tokens the stack accepts: its secret, and the issuer and audience of ``Settings``."""
    defaults = Settings(environment="test", jwt_secret=jwt_secret)
    return TokenService(
        jwt_secret,
        issuer=defaults.jwt_issuer,
        audience=defaults.jwt_audience,
        ttl_seconds=TOKEN_TTL_SECONDS,
    )


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


async def _insert(db: Database, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    for batch in _batches(rows):
        async with db.session() as session:  # one short transaction per batch
            await session.execute(insert(model), list(batch))


async def seed_users(db: Database, prefix: str, count: int, tokens: TokenService) -> list[Learner]:
    """``count`` active users, each signed in once (a session and an access token).

    They share one unusable password hash: nobody logs in as them with a password."""
    now = utcnow()
    users = [
        {
            "id": new_id(),
            "email": f"{prefix}-{index}@example.com",
            "full_name": f"Learner {index}",
            "password_hash": "!bench-no-password",
            "status": UserStatus.ACTIVE,
            "created_at": now,
            "updated_at": now,
            "verified_at": now,
        }
        for index in range(count)
    ]
    sessions = [
        {
            "id": new_id(),
            "user_id": user["id"],
            "created_at": now,
            "expires_at": now + timedelta(seconds=TOKEN_TTL_SECONDS),
            "last_used_at": now,
            "user_agent": "authflow-bench",
        }
        for user in users
    ]
    await _insert(db, User, users)
    await _insert(db, Session, sessions)
    return [
        Learner(str(u["id"]), str(u["email"]), tokens.issue_access(str(u["id"]), str(s["id"])))
        for u, s in zip(users, sessions, strict=True)
    ]


def _course_row(index: int, owner_id: str, rng: random.Random, now: Any) -> dict[str, Any]:
    topic = _TOPICS[index % len(_TOPICS)]
    title = f"{topic.title()} {index:04d}"
    summary = f"Everything about {topic}, step by step ({index})"
    tags = [topic, rng.choice(("classic", "modern", "quick"))]
    # Spread over the last days, so `newest` orders by something real.
    published = now - timedelta(seconds=index * 37)
    return {
        "id": new_id(),
        "owner_id": owner_id,
        "slug": f"{slugify(title)}-{index}",
        "title": title,
        "summary": summary,
        "description": f"# {title}\n\n{summary}.",
        "level": rng.choice(list(CourseLevel)).value,
        "tags": tags,
        "price_cents": 0,
        "currency": "EUR",
        "status": CourseStatus.PUBLISHED,
        "version": 2,
        "search_text": search_text(title, summary),
        "tags_key": tags_key(tags),
        "title_key": normalise(title)[:200],
        "enrollment_count": 0,
        "created_at": published,
        "updated_at": published,
        "published_at": published,
    }


async def seed_catalogue(db: Database, owner_id: str, courses: int, seed: int = 7) -> list[str]:
    """``courses`` published courses of ``MODULES_PER_COURSE`` modules of
    ``LESSONS_PER_MODULE`` text lessons each, all open from enrolment; their ids."""
    rng, now = random.Random(seed), utcnow()  # noqa: S311 - sample data
    course_rows = [_course_row(index, owner_id, rng, now) for index in range(courses)]
    await _insert(db, Course, course_rows)
    for start in range(0, courses, 100):  # modules and lessons of 100 courses at a time
        modules: list[dict[str, Any]] = []
        lessons: list[dict[str, Any]] = []
        for course in course_rows[start : start + 100]:
            for m in range(MODULES_PER_COURSE):
                module_id = new_id()
                modules.append(
                    {
                        "id": module_id,
                        "course_id": course["id"],
                        "title": f"Module {m + 1}",
                        "position": m,
                        "version": 1,
                        "created_at": now,
                    }
                )
                for n in range(LESSONS_PER_MODULE):
                    title = f"Lesson {m + 1}.{n + 1}"
                    lessons.append(
                        {
                            "id": new_id(),
                            "module_id": module_id,
                            "course_id": course["id"],
                            "title": title,
                            "kind": LessonKind.TEXT,
                            "body": _LESSON_BODY.format(title=title, n=n),
                            "duration_seconds": 300,
                            "preview": m == 0 and n == 0,
                            "release_after_days": 0,
                            "position": n,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
        await _insert(db, CourseModule, modules)
        await _insert(db, Lesson, lessons)
    return [str(row["id"]) for row in course_rows]


def _options(right: int) -> list[dict[str, Any]]:
    """Options a, b, c; the first ``right`` of them correct."""
    return [{"id": o, "text": o.upper(), "correct": i < right} for i, o in enumerate("abc")]


def _question(index: int) -> dict[str, Any]:
    """Question ``q<index>``, of kind ``index % 5`` (``learners.answer_for`` answers it)."""
    base: dict[str, Any] = {"id": f"q{index}", "prompt": f"Question {index}"}
    kind = index % 5
    if kind == 0:
        return {**base, "kind": "single", "options": _options(1)}
    if kind == 1:
        return {**base, "kind": "multiple", "options": _options(2)}
    if kind == 2:
        return {**base, "kind": "true_false", "answer": True}
    if kind == 3:
        return {**base, "kind": "short_text", "answers": ["custard"]}
    return {**base, "kind": "numeric", "value": 42, "tolerance": 0.5}


def quiz_definition(questions: int, time_limit_seconds: int | None) -> QuizDefinition:
    """``questions`` questions cycling through the five kinds (ids ``q0``, ``q1``...)."""
    return QuizDefinition.model_validate(
        {
            "pass_percent": 50,
            "time_limit_seconds": time_limit_seconds,
            "show_answers": "after_submit",
            "questions": [_question(index) for index in range(questions)],
        }
    )


async def seed_quiz_course(
    db: Database, owner_id: str, definition: QuizDefinition, tag: str
) -> QuizSeed:
    """A published course with one text lesson and one quiz lesson holding ``definition``."""
    now = utcnow()
    course = _course_row(0, owner_id, random.Random(1), now)  # noqa: S311 - sample data
    course.update(
        slug=f"bench-quiz-{tag}", title=f"Quiz bench {tag}", title_key=f"quiz bench {tag}"
    )
    module_id, lesson_id, quiz_id = new_id(), new_id(), new_id()
    async with db.session() as session:
        await session.execute(insert(Course), [course])
        await session.execute(
            insert(CourseModule),
            [{"id": module_id, "course_id": course["id"], "title": "Exam", "position": 0,
              "version": 1, "created_at": now}],
        )  # fmt: skip
        lesson = {"module_id": module_id, "course_id": course["id"], "body": "", "version": 1,
                  "release_after_days": 0, "preview": False, "created_at": now,
                  "updated_at": now}  # fmt: skip
        await session.execute(
            insert(Lesson),
            [
                {**lesson, "id": new_id(), "title": "Before the exam", "kind": LessonKind.TEXT,
                 "position": 0},
                {**lesson, "id": lesson_id, "title": "The exam", "kind": LessonKind.QUIZ,
                 "position": 1},
            ],
        )  # fmt: skip
        await session.execute(
            insert(Quiz),
            [{"id": quiz_id, "lesson_id": lesson_id, "course_id": course["id"], "version": 1,
              "created_at": now, "updated_at": now}],
        )  # fmt: skip
        await session.execute(
            insert(QuizVersion),
            [{"quiz_id": quiz_id, "version": 1, "definition": definition.model_dump(mode="json"),
              "created_at": now}],
        )  # fmt: skip
    return QuizSeed(str(course["id"]), lesson_id, quiz_id, definition)


async def enrol_directly(db: Database, course_id: str, user_ids: Sequence[str]) -> None:
    """Active enrollments without their workflows: the quiz scenario measures quizzes,
    not a burst of welcome emails.  (The learn scenario enrols through the API.)"""
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "course_id": course_id,
            "user_id": user_id,
            "status": EnrollmentStatus.ACTIVE,
            "enrolled_at": now,
            "last_activity_at": now,
        }
        for user_id in user_ids
    ]
    await _insert(db, Enrollment, rows)
