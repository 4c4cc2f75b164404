"""Courses, their content, enrollments, progress and certificates.

Tables live on the one ``Base`` of ``authflow.models``; migration 0007 creates them.
Other learning domains (quizzes, announcements) hang their tables on these: a quiz on
a ``Lesson`` of kind ``quiz``, an announcement's audience on ``Enrollment``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from authflow.models import Base, UtcDateTime, new_id, utcnow


class CourseStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class CourseLevel(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class LessonKind(StrEnum):
    TEXT = "text"
    VIDEO = "video"
    FILE = "file"
    # Completed only by passing its quiz (the quiz domain calls ``service.complete_lesson``).
    QUIZ = "quiz"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (
        Index("ix_courses_status_published", "status", "published_at", "id"),
        Index("ix_courses_status_title", "status", "title_key", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # A deleted owner leaves the course to the managers ([courses:manage]).
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str | None] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(16), default=CourseStatus.DRAFT)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Computed in Python (``search.normalise``) so that search is case- and
    # accent-insensitive alike on SQLite and PostgreSQL, without extensions.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # "|tag1|tag2|" (normalised): a tag filter is one LIKE on both databases.
    tags_key: Mapped[str] = mapped_column(Text, default="|")
    # The title's normalised sort key (sort=title).
    title_key: Mapped[str] = mapped_column(String(200), default="")
    # Active enrollments (sort=popular); kept by the enrollment service.
    enrollment_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CourseModule(Base):
    __tablename__ = "course_modules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Lesson(Base):
    __tablename__ = "lessons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    module_id: Mapped[str] = mapped_column(
        ForeignKey("course_modules.id", ondelete="CASCADE"), index=True
    )
    # Denormalised from the module: progress and access checks need the course at once.
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text, default="")
    video_url: Mapped[str | None] = mapped_column(String(2000))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    preview: Mapped[bool] = mapped_column(Boolean, default=False)
    release_after_days: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Attachment(Base):
    """A lesson's file; the bytes live in the storage backend under ``storage_key``."""

    __tablename__ = "lesson_attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    lesson_id: Mapped[str] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Enrollment(Base):
    """One learner in one course; kept when they leave, so re-enrolling keeps progress."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("course_id", "user_id", name="uq_enrollment_course_user"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # No cascade: a course with enrollments cannot be deleted (archive it instead).
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE)
    # Drip release counts from here (the first enrollment; re-enrolling keeps it).
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LessonCompletion(Base):
    __tablename__ = "lesson_completions"

    enrollment_id: Mapped[str] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    # A deleted lesson takes its completions with it: it no longer counts in ``total``.
    lesson_id: Mapped[str] = mapped_column(
        ForeignKey("lessons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Certificate(Base):
    """Issued once per enrollment: the unique constraint makes two concurrent
    completions of the last lesson issue one certificate."""

    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    enrollment_id: Mapped[str] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    # Copied at issue time: a certificate says what was true when it was earned.
    learner_name: Mapped[str] = mapped_column(String(200))
    course_title: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CatalogueSnapshot(Base):
    """The order of a ``sort=popular`` listing frozen at its first page.

    Popularity changes while a learner pages, so a cursor over live counts could show
    a course twice or skip one; the cursor names this snapshot and an offset instead.
    Courses added later are simply not in it (they did not exist at the first page).
    Shared by the first pages it serves (``catalogue._snapshot_for``): the id digests the
    filters and the order; ``created_at`` is when it was last handed out (moved forward
    at most hourly), which its expiry and the cap on rows count from.
    """

    __tablename__ = "catalogue_snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    course_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
