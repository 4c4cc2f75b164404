"""Building the responses that combine several records (outline, lesson, progress)."""

from __future__ import annotations

from api.courses.schemas import (
    CourseDetailOut,
    CourseOut,
    EnrollmentOut,
    OutlineLessonOut,
    OutlineModuleOut,
)
from authflow.courses.models import Course, Enrollment, EnrollmentStatus
from authflow.courses.repository import Outline
from authflow.courses.service import available_at


def enrollment_out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id,
        course_id=enrollment.course_id,
        status=enrollment.status,
        enrolled_at=enrollment.enrolled_at,
        completed_at=enrollment.completed_at,
    )


def outline_out(outline: Outline, enrollment: Enrollment | None) -> list[OutlineModuleOut]:
    active = enrollment if enrollment and enrollment.status == EnrollmentStatus.ACTIVE else None
    return [
        OutlineModuleOut(
            id=module.id,
            title=module.title,
            position=module.position,
            version=module.version,
            lessons=[
                OutlineLessonOut(
                    id=lesson.id,
                    title=lesson.title,
                    kind=lesson.kind,
                    duration_seconds=lesson.duration_seconds,
                    preview=lesson.preview,
                    release_after_days=lesson.release_after_days,
                    available_at=available_at(lesson, active),
                    position=lesson.position,
                )
                for lesson in outline.lessons.get(module.id, [])
            ],
        )
        for module in outline.modules
    ]


def course_detail(
    course: Course, outline: Outline, enrollment: Enrollment | None
) -> CourseDetailOut:
    return CourseDetailOut(
        **CourseOut.fields_of(course),
        modules=outline_out(outline, enrollment),
        enrollment=enrollment_out(enrollment) if enrollment else None,
    )
