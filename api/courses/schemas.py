"""Request and response bodies of the learning API (the contract's field names)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from authflow.courses.markdown import render
from authflow.courses.models import Attachment, Certificate, Course, CourseModule, Lesson
from authflow.errors import VIDEO_URL_REQUIRED

MAX_MARKDOWN = 60_000


class Body(BaseModel):
    """Unknown fields refused, no coercion; long Markdown allowed (the body limit bounds it)."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=MAX_MARKDOWN)


def _no_controls(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise PydanticCustomError("invalid_text", "Control characters are not allowed here.")
    return value


def _title(value: str) -> str:
    # Surrounding spaces are noise (and a title of spaces alone would show as nothing,
    # with the slug "course"): kept out of titles, slugs and the catalogue's sort.
    value = _no_controls(value).strip()
    if not value:
        raise PydanticCustomError("blank_title", "A title needs more than spaces.")
    return value


def _markdown(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("invalid_text", "NUL characters are not allowed.")
    return value


def _https(value: str) -> str:
    if not value.lower().startswith("https://") or len(value) <= len("https://"):
        raise PydanticCustomError("invalid_url", "video_url must be an https:// address.")
    return _no_controls(value)


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise PydanticCustomError("invalid_currency", "currency is a 3-letter ISO 4217 code.")
    return value.upper()


Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_title)]
Summary = Annotated[str, Field(max_length=500), AfterValidator(_no_controls)]
Markdown = Annotated[str, Field(max_length=MAX_MARKDOWN), AfterValidator(_markdown)]
Tag = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_no_controls)]
Level = Literal["beginner", "intermediate", "advanced"]
Kind = Literal["text", "video", "file", "quiz"]
VideoUrl = Annotated[str, Field(max_length=2000), AfterValidator(_https)]
Currency = Annotated[str, AfterValidator(_currency)]
Position = Annotated[int, Field(ge=0, le=10_000)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class CourseCreate(Body):
    title: Title
    summary: Summary = ""
    description: Markdown = ""
    level: Level | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    price_cents: int = Field(default=0, ge=0, le=100_000_000)
    currency: Currency = "EUR"


class CourseUpdate(Body):
    title: Title | None = None
    summary: Summary | None = None
    description: Markdown | None = None
    level: Level | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    currency: Currency | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent (``level: null`` clears the level; other nulls change nothing)."""
        sent = self.model_dump(exclude_unset=True)
        return {k: v for k, v in sent.items() if v is not None or k == "level"}


class ModuleCreate(Body):
    title: Title
    position: Position | None = None


class ModuleUpdate(Body):
    title: Title | None = None
    position: Position | None = None


class OrderRequest(Body):
    ids: list[Id] = Field(max_length=1000)


class LessonCreate(Body):
    title: Title
    kind: Kind
    body: Markdown = ""
    video_url: VideoUrl | None = Field(
        default=None, description="An https:// address; required when `kind` is `video`."
    )
    duration_seconds: int | None = Field(default=None, ge=0, le=1_000_000)
    preview: bool = False
    release_after_days: int = Field(default=0, ge=0, le=365)
    position: Position | None = None

    @model_validator(mode="after")
    def _video_has_its_url(self) -> LessonCreate:
        # A video lesson without its video shows learners nothing to watch.
        if self.kind == "video" and self.video_url is None:
            raise PydanticCustomError(
                VIDEO_URL_REQUIRED, "A video lesson needs its video_url (https://...)."
            )
        return self


class LessonUpdate(Body):
    title: Title | None = None
    body: Markdown | None = None
    video_url: VideoUrl | None = Field(
        default=None, description="`null` clears it, except on a `video` lesson (422)."
    )
    duration_seconds: int | None = Field(default=None, ge=0, le=1_000_000)
    preview: bool | None = None
    release_after_days: int | None = Field(default=None, ge=0, le=365)
    position: Position | None = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(exclude_unset=True)
        nullable = {"video_url", "duration_seconds"}
        return {k: v for k, v in sent.items() if v is not None or k in nullable}


# --- responses ------------------------------------------------------------------------------


class ProgressOut(BaseModel):
    completed: int
    total: int
    percent: int


class EnrollmentOut(BaseModel):
    id: str
    course_id: str
    status: str
    enrolled_at: datetime
    completed_at: datetime | None = None


class CourseOut(BaseModel):
    id: str
    slug: str
    title: str
    summary: str
    description: str
    description_html: str
    level: str | None
    tags: list[str]
    price_cents: int
    currency: str
    status: str
    version: int
    owner_id: str | None
    enrollment_count: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def fields_of(cls, course: Course) -> dict[str, Any]:
        return {
            "id": course.id,
            "slug": course.slug,
            "title": course.title,
            "summary": course.summary,
            "description": course.description,
            "description_html": render(course.description),
            "level": course.level,
            "tags": list(course.tags),
            "price_cents": course.price_cents,
            "currency": course.currency,
            "status": course.status,
            "version": course.version,
            "owner_id": course.owner_id,
            "enrollment_count": course.enrollment_count,
            "created_at": course.created_at,
            "updated_at": course.updated_at,
            "published_at": course.published_at,
        }

    @classmethod
    def of(cls, course: Course) -> CourseOut:
        return cls(**cls.fields_of(course))


class CourseSummaryOut(BaseModel):
    """A catalogue entry (no Markdown rendering: the list stays cheap)."""

    id: str
    slug: str
    title: str
    summary: str
    level: str | None
    tags: list[str]
    price_cents: int
    currency: str
    enrollment_count: int
    published_at: datetime | None

    @classmethod
    def of(cls, course: Course) -> CourseSummaryOut:
        return cls(
            id=course.id,
            slug=course.slug,
            title=course.title,
            summary=course.summary,
            level=course.level,
            tags=list(course.tags),
            price_cents=course.price_cents,
            currency=course.currency,
            enrollment_count=course.enrollment_count,
            published_at=course.published_at,
        )


class CoursePage(BaseModel):
    items: list[CourseSummaryOut]
    next_cursor: str | None


class OutlineLessonOut(BaseModel):
    id: str
    title: str
    kind: str
    duration_seconds: int | None
    preview: bool
    release_after_days: int
    # When it opens for the signed-in learner; null for anyone not enrolled.
    available_at: datetime | None
    position: int


class OutlineModuleOut(BaseModel):
    id: str
    title: str
    position: int
    version: int
    lessons: list[OutlineLessonOut]


class OutlineOut(BaseModel):
    modules: list[OutlineModuleOut]


class CourseDetailOut(CourseOut):
    modules: list[OutlineModuleOut]
    enrollment: EnrollmentOut | None


class ModuleOut(BaseModel):
    id: str
    course_id: str
    title: str
    position: int
    version: int

    @classmethod
    def of(cls, module: CourseModule) -> ModuleOut:
        return cls(
            id=module.id,
            course_id=module.course_id,
            title=module.title,
            position=module.position,
            version=module.version,
        )


class AttachmentOut(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str

    @classmethod
    def of(cls, item: Attachment) -> AttachmentOut:
        return cls(
            id=item.id,
            filename=item.filename,
            content_type=item.content_type,
            size=item.size,
            sha256=item.sha256,
        )


class LessonOut(BaseModel):
    id: str
    module_id: str
    course_id: str
    title: str
    kind: str
    body: str
    body_html: str
    video_url: str | None
    duration_seconds: int | None
    preview: bool
    release_after_days: int
    position: int
    version: int
    available_at: datetime | None = None
    attachments: list[AttachmentOut] = Field(default_factory=list)
    completed: bool = False

    @classmethod
    def of(cls, lesson: Lesson, **extra: Any) -> LessonOut:
        return cls(
            id=lesson.id,
            module_id=lesson.module_id,
            course_id=lesson.course_id,
            title=lesson.title,
            kind=lesson.kind,
            body=lesson.body,
            body_html=render(lesson.body),
            video_url=lesson.video_url,
            duration_seconds=lesson.duration_seconds,
            preview=lesson.preview,
            release_after_days=lesson.release_after_days,
            position=lesson.position,
            version=lesson.version,
            **extra,
        )


class LessonListOut(BaseModel):
    items: list[LessonOut]


class CompleteOut(BaseModel):
    progress: ProgressOut


class CourseProgressOut(BaseModel):
    completed_lesson_ids: list[str]
    completed: int
    total: int
    percent: int
    next_lesson_id: str | None
    completed_at: datetime | None
    certificate_id: str | None


class MyEnrollmentOut(EnrollmentOut):
    course: CourseSummaryOut
    progress: ProgressOut


class MyEnrollmentPage(BaseModel):
    items: list[MyEnrollmentOut]
    next_cursor: str | None


class LearnerOut(BaseModel):
    enrollment_id: str
    user_id: str
    email: str
    full_name: str | None
    status: str
    enrolled_at: datetime
    last_activity_at: datetime
    completed_at: datetime | None
    progress: ProgressOut


class LearnerPage(BaseModel):
    items: list[LearnerOut]
    next_cursor: str | None


class CertificateOut(BaseModel):
    id: str
    learner_name: str
    course_title: str
    issued_at: datetime
    url: str

    @classmethod
    def of(cls, certificate: Certificate, base_url: str) -> CertificateOut:
        return cls(
            id=certificate.id,
            learner_name=certificate.learner_name,
            course_title=certificate.course_title,
            issued_at=certificate.issued_at,
            url=f"{base_url.rstrip('/')}/certificates/{certificate.id}",
        )
