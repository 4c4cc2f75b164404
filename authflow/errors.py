"""Error types.  Each carries its HTTP status and the contract's snake_case code;
the API renders them all with one handler as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import ClassVar


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.retry_after = retry_after
        # Fields the contract adds beside code and message (e.g. ``available_at``).
        self.extra: dict[str, object] = {}

    @property
    def headers(self) -> dict[str, str]:
        return (
            {"Retry-After": str(max(1, self.retry_after))} if self.retry_after is not None else {}
        )


class EmailTaken(AppError):
    status, code = 409, "email_taken"
    default_message = "An account with this email address already exists."


class WeakPassword(AppError):
    status, code = 422, "weak_password"
    default_message = "This password is too common or does not meet the length rules."


class InvalidEmail(AppError):
    status, code = 422, "invalid_email"
    default_message = "This email address cannot be used."


class InvalidOtp(AppError):
    status, code = 400, "invalid_otp"
    default_message = "The code is not valid."


class OtpExpired(AppError):
    status, code = 400, "otp_expired"
    default_message = "The code has expired; request a new one."


class TooManyAttempts(AppError):
    status, code = 429, "too_many_attempts"
    default_message = "Too many attempts; wait before trying again."


class Cooldown(AppError):
    status, code = 429, "cooldown"
    default_message = "A code was sent recently; wait before asking for another."


class RateLimited(AppError):
    status, code = 429, "rate_limited"
    default_message = "Too many requests from this address; wait before trying again."


class InvalidCredentials(AppError):
    status, code = 401, "invalid_credentials"
    default_message = "Email or password is incorrect."


class WrongCurrentPassword(AppError):
    status, code = 400, "invalid_credentials"
    default_message = "The current password is incorrect."


class SamePassword(AppError):
    status, code = 422, "same_password"
    default_message = "The new password must differ from the current one."


class NotAuthenticated(AppError):
    status, code = 401, "not_authenticated"
    default_message = "A valid bearer token is required."


class InvalidToken(AppError):
    status, code = 401, "invalid_token"
    default_message = "The token is invalid, expired or revoked."


class NotVerified(AppError):
    status, code = 403, "not_verified"
    default_message = "The email address has not been verified yet."


class Banned(AppError):
    status, code = 403, "banned"
    default_message = "This account is banned."


class PendingApproval(AppError):
    status, code = 403, "pending_approval"
    default_message = "This account is waiting for an administrator's approval."


class Forbidden(AppError):
    status, code = 403, "forbidden"
    default_message = "You do not have the permission this action needs."


class NotFound(AppError):
    status, code = 404, "not_found"
    default_message = "Not found."


class Conflict(AppError):
    status, code = 409, "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"
    default_message = "The request body is too large."


class ServiceUnavailable(AppError):
    status, code = 503, "unavailable"
    default_message = "A service this request needs is unavailable; try again shortly."


class LastAdmin(AppError):
    status, code = 409, "last_admin"
    default_message = "The last active ADMIN can be neither demoted, banned nor deleted."


class SeededRole(AppError):
    status, code = 409, "seeded_role"
    default_message = "Seeded roles cannot be deleted."


class ReservedPermission(AppError):
    status, code = 422, "reserved_permission"
    default_message = "Only the ADMIN role holds 'roles:manage'."


class RoleExists(AppError):
    status, code = 409, "role_exists"
    default_message = "A role with this name already exists."


class NotPendingApproval(AppError):
    status, code = 409, "not_pending_approval"
    default_message = "This account is not waiting for approval."


class NotEligible(AppError):
    status, code = 409, "not_eligible"
    default_message = "The account is no longer in a state that can receive this code."


class UnknownRole(AppError):
    status, code = 422, "unknown_role"
    default_message = "Unknown role."


class UnknownPermission(AppError):
    status, code = 422, "unknown_permission"
    default_message = "Unknown permission."


class InvalidUnsubscribeToken(AppError):
    status, code = 400, "invalid_token"
    default_message = "This unsubscribe link is not valid."


class InvalidState(AppError):
    status, code = 409, "invalid_state"
    default_message = "This action is not possible in the current state."


class UnknownCourse(AppError):
    status, code = 422, "unknown_course"
    default_message = "No course has this id."


# --- learning -------------------------------------------------------------------------


class VersionConflict(AppError):
    status, code = 412, "version_conflict"
    default_message = "The resource changed since you read it (stale If-Match version)."


class CourseEmpty(AppError):
    status, code = 409, "course_empty"
    default_message = "A course needs at least one lesson to be published."


class QuizMissing(AppError):
    """A course whose quiz lesson has no quiz could be published, but nobody could
    complete it (a quiz lesson completes only by passing its quiz)."""

    status, code = 409, "quiz_missing"
    default_message = "A quiz lesson has no quiz yet."

    def __init__(self, lesson_id: str, title: str) -> None:
        super().__init__(
            f"The quiz lesson '{title}' has no quiz yet: add its quiz "
            "(PUT /api/v1/lessons/{id}/quiz) or remove the lesson, then publish."
        )
        self.extra = {"lesson_id": lesson_id}


VIDEO_URL_REQUIRED = "video_url_required"


class VideoUrlRequired(AppError):
    """A ``PATCH`` clearing a video lesson's ``video_url``: the same 422 as a video
    lesson created without one (``LessonCreate``), details and all."""

    status, code = 422, "validation_error"
    default_message = "video_url: A video lesson needs its video_url (https://...)."

    def __init__(self) -> None:
        super().__init__()
        self.extra = {
            "details": [
                {
                    "loc": ["body", "video_url"],
                    "msg": "A video lesson needs its video_url (https://...).",
                    "type": VIDEO_URL_REQUIRED,
                }
            ]
        }


class CourseHasEnrollments(AppError):
    status, code = 409, "course_has_enrollments"
    default_message = "This course has enrollments; archive it instead."


class CourseArchived(AppError):
    status, code = 409, "course_archived"
    default_message = "This course is archived and takes no new enrollments."


class PaymentRequired(AppError):
    status, code = 402, "payment_required"
    default_message = "This course is paid; payments are not available yet."


class NotEnrolled(AppError):
    status, code = 403, "not_enrolled"
    default_message = "You are not enrolled in this course."


class LessonLocked(AppError):
    status, code = 403, "lesson_locked"
    default_message = "This lesson is not open yet."

    def __init__(self, available_at: str) -> None:
        super().__init__(f"This lesson opens at {available_at}.")
        self.extra = {"available_at": available_at}


class QuizRequired(AppError):
    status, code = 409, "quiz_required"
    default_message = "A quiz lesson is completed by passing its quiz."


class FileTooLarge(AppError):
    status, code = 413, "file_too_large"
    default_message = "The file is larger than the upload limit."


class UnsupportedType(AppError):
    status, code = 415, "unsupported_type"
    default_message = "This type of file is not accepted."


class InvalidCursor(AppError):
    status, code = 422, "invalid_cursor"
    default_message = "The cursor is not valid for this list."


class InvalidOrder(AppError):
    status, code = 422, "invalid_order"
    default_message = "The ids must be exactly the current items, each once."


class RangeNotSatisfiable(AppError):
    status, code = 416, "range_not_satisfiable"
    default_message = "The requested range is outside the file."

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        # RFC 9110: a 416 says the representation's length, so a client can ask again.
        return {"Content-Range": f"bytes */{self.size}"}


# --- quizzes --------------------------------------------------------------------------


class InvalidAnswer(AppError):
    status, code = 422, "invalid_answer"
    default_message = "An answer does not fit its question."


class AttemptsExhausted(AppError):
    status, code = 409, "attempts_exhausted"
    default_message = "Every attempt this quiz allows has been used."


class AttemptClosed(AppError):
    status, code = 409, "attempt_closed"
    default_message = "This attempt is closed: it was submitted or its time is up."


class NotQuizLesson(AppError):
    status, code = 409, "not_a_quiz_lesson"
    default_message = "Only a lesson of kind 'quiz' has a quiz."
