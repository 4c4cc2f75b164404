"""Announcements: every broadcast with its state and progress; compose one (audience,
subject, Markdown body, optional send time) with a preview of the email as recipients
get it; one announcement's live progress, pause / resume / cancel, its failed
recipients and "re-send failed".  Each form calls the same use cases as the JSON API
(``api.announcements.use_cases``) as the signed-in sender, for [announcements:send].

A preview is bound to what it showed: the send form carries an HMAC of the previewed
fields (``signed.mac``), so what goes out is what was looked at; an edit after the
preview asks for a fresh one instead of sending.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.datastructures import FormData

from api.admin.audit import Actor
from api.announcements import use_cases
from api.announcements.schemas import AnnouncementCreate, CourseLearners, RoleMembers
from api.deps import DbSession, ServicesDep
from authflow.announcements import repository as repo
from authflow.announcements import service
from authflow.announcements.models import Announcement
from authflow.announcements.repository import Audience
from authflow.announcements.states import RESEND_FROM, AnnouncementState, AudienceKind, Control
from authflow.courses.models import Course, CourseStatus
from authflow.emails.rendering import MessageBuildError, Rendered
from authflow.emails.unsubscribe import PAGE_PATH
from authflow.errors import AppError
from authflow.models import Role, User
from authflow.settings import Settings

from .actions import act, record_id, validation_message
from .pages import PAGE_SIZE, Pager, need, offset_param
from .session import Console, ConsoleDep, PostedDep, form_text
from .signed import mac, same_token
from .web import PREFIX, ConsoleRoute, Flash, redirect, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=2000)]
SEND = service.SEND_ANY
HOME = f"{PREFIX}/announcements"
# Still moving: the page polls itself (console.js, data-refresh) while in one of these.
MOVING = frozenset({AnnouncementState.SCHEDULED.value, AnnouncementState.SENDING.value})
REFRESH_SECONDS = 2
COURSE_CHOICES = 200
PREVIEW_PURPOSE = "console-announcement-preview"
CONTROLS = {
    Control.PAUSE: (AnnouncementState.SCHEDULED.value, AnnouncementState.SENDING.value),
    Control.RESUME: (AnnouncementState.PAUSED.value,),
    Control.CANCEL: (
        AnnouncementState.SCHEDULED.value,
        AnnouncementState.SENDING.value,
        AnnouncementState.PAUSED.value,
    ),
}


def _sender(console: Console) -> service.Sender:
    principal = console.principal
    return service.Sender(principal.user.id, principal.permissions)


# -- the list ----------------------------------------------------------------------------


@router.get("/announcements")
async def announcements_page(
    request: Request, console: ConsoleDep, db: DbSession, offset: Text = None
) -> Response:
    need(console, SEND)
    start = offset_param(offset)
    total = int(await db.scalar(select(func.count()).select_from(Announcement)) or 0)
    rows = (
        await db.execute(
            select(Announcement, User.email)
            .outerjoin(User, User.id == Announcement.sender_id)
            .order_by(Announcement.created_at.desc(), Announcement.id.desc())
            .limit(PAGE_SIZE)
            .offset(start)
        )
    ).tuples()
    items = [(a, email, await repo.progress(db, a)) for a, email in rows]
    return render(
        request,
        "announcements.html",
        {
            "items": items,
            "total": total,
            "moving": any(a.state in MOVING for a, _, _ in items),
            "refresh": REFRESH_SECONDS,
            "pager": Pager(HOME, {}, start, total),
        },
    )


# -- compose, preview, send ----------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """The compose form's fields as typed (shown back on every page of the flow)."""

    kind: str = "all"
    role: str = ""
    course_id: str = ""
    subject: str = ""
    body: str = ""
    send_at: str = ""  # <input type="datetime-local">, UTC

    @classmethod
    def of(cls, form: FormData) -> Draft:
        return cls(
            kind=form_text(form, "kind", max_length=16),
            role=form_text(form, "role", max_length=64),
            course_id=form_text(form, "course_id", max_length=36),
            subject=form_text(form, "subject", max_length=400),
            body=form_text(form, "body", max_length=8192),
            send_at=form_text(form, "send_at", max_length=32),
        )

    def request(self) -> AnnouncementCreate:
        """The JSON API's own body model: the same validation, the same messages."""
        audience: dict[str, str] = {"kind": self.kind}
        if self.kind == AudienceKind.ROLE:
            audience["role"] = self.role
        elif self.kind == AudienceKind.COURSE:
            audience["course_id"] = self.course_id
        send_at = None
        if self.send_at:
            try:
                send_at = datetime.fromisoformat(self.send_at).replace(tzinfo=UTC).isoformat()
            except ValueError:
                send_at = self.send_at  # the model refuses it with its own message
        return AnnouncementCreate.model_validate(
            {"audience": audience, "subject": self.subject, "body": self.body, "send_at": send_at}
        )

    def seal(self, settings: Settings, console: Console) -> str:
        """What the preview showed, bound to this signer-in's session."""
        data = json.dumps([console.csrf_token, *self.__dict__.values()], ensure_ascii=False)
        digest = hashlib.sha256(data.encode()).digest()
        return mac(settings, PREVIEW_PURPOSE, base64.b64encode(digest).decode())


def _audience(body: AnnouncementCreate) -> Audience:
    chosen = body.audience
    if isinstance(chosen, RoleMembers):
        return Audience(AudienceKind.ROLE, role=chosen.role)
    if isinstance(chosen, CourseLearners):
        return Audience(AudienceKind.COURSE, course_id=chosen.course_id)
    return Audience(AudienceKind.ALL)


async def _compose(
    request: Request,
    console: Console,
    db: DbSession,
    settings: Settings,
    draft: Draft,
    *,
    preview: Rendered | None = None,
    reach: int | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    roles = list(await db.scalars(select(Role.name).order_by(Role.name)))
    courses = (
        await db.execute(
            select(Course.id, Course.title)
            .where(Course.status != CourseStatus.ARCHIVED)
            .order_by(Course.title, Course.id)
            .limit(COURSE_CHOICES)
        )
    ).all()
    return render(
        request,
        "announcement_new.html",
        {
            "draft": draft,
            "roles": roles,
            "courses": courses,
            "preview": preview,
            "reach": reach,
            "problem": problem,
            "seal": draft.seal(settings, console) if preview is not None else "",
        },
        status=status,
    )


@router.get("/announcements/new")
async def compose_page(
    request: Request, console: ConsoleDep, db: DbSession, services: ServicesDep
) -> Response:
    need(console, SEND)
    return await _compose(request, console, db, services.settings, Draft())


async def _checked(
    posted_console: Console, db: DbSession, draft: Draft
) -> tuple[AnnouncementCreate, Audience, int]:
    """The draft as the API would take it (422's message, or 403/422 of the audience
    check, raised), and the audience's size now."""
    body = draft.request()
    audience = _audience(body)
    await service.check_audience(db, _sender(posted_console), audience)
    return body, audience, await repo.count_audience(db, audience)


@router.post("/announcements/preview")
async def preview(
    request: Request, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    need(posted.console, SEND)
    return await _preview_page(
        request, posted.console, db, services.settings, Draft.of(posted.form)
    )


async def _preview_page(
    request: Request,
    console: Console,
    db: DbSession,
    settings: Settings,
    draft: Draft,
    *,
    note: str | None = None,
) -> Response:
    """The compose form with the email as recipients will get it, and the send button
    (sealed to what is shown); or the form with what is wrong."""
    try:
        body, _, reach = await _checked(console, db, draft)
        rendered = service.preview(body.subject, body.body, _sample_unsubscribe(settings))
    except (ValidationError, AppError, MessageBuildError) as exc:
        return await _problem(request, console, db, settings, draft, exc)
    return await _compose(
        request, console, db, settings, draft, preview=rendered, reach=reach, problem=note
    )


@router.post("/announcements")
async def send(
    request: Request, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    console = posted.console
    need(console, SEND)
    settings = services.settings
    draft = Draft.of(posted.form)
    if not same_token(draft.seal(settings, console), form_text(posted.form, "seal") or None):
        note = "It changed since its preview: check the email below, then send."
        return await _preview_page(request, console, db, settings, draft, note=note)
    try:
        await services.gate.ensure()  # Temporal down: say so before anything is written
        body, audience, _ = await _checked(console, db, draft)
        announcement = await use_cases.create(
            db,
            _sender(console),
            audience,
            settings,
            subject=body.subject,
            body=body.body,
            send_at=body.send_at,
        )
    except ValidationError as exc:
        await db.rollback()
        return await _problem(request, console, db, settings, draft, exc)
    except AppError as exc:
        await db.rollback()
        return await _problem(request, console, db, settings, draft, exc)
    when = "is being sent" if announcement.state == AnnouncementState.SENDING else "is scheduled"
    return redirect(
        f"{HOME}/{announcement.id}",
        flash=Flash("ok", f"{announcement.subject} {when}."),
        settings=settings,
    )


async def _problem(
    request: Request,
    console: Console,
    db: DbSession,
    settings: Settings,
    draft: Draft,
    problem: ValidationError | AppError | MessageBuildError,
) -> Response:
    if isinstance(problem, ValidationError):
        text, status = validation_message(problem), 422
    elif isinstance(problem, AppError):
        text, status = problem.message, problem.status
    else:
        text, status = "This email cannot be written: check the body.", 422
    return await _compose(request, console, db, settings, draft, problem=text, status=status)


def _sample_unsubscribe(settings: Settings) -> str:
    """A stand-in for each recipient's own one-click link."""
    return f"{settings.public_base_url.rstrip('/')}{PAGE_PATH}?token=…"


# -- one announcement ----------------------------------------------------------------------


@router.get("/announcements/{announcement_id}")
async def announcement_page(
    request: Request, announcement_id: str, console: ConsoleDep, db: DbSession, after: Text = None
) -> Response:
    need(console, SEND)
    announcement = await service.visible(
        db, _sender(console), record_id(announcement_id, "announcement")
    )
    figures = await repo.progress(db, announcement)
    start = after if after and after.isprintable() and len(after) <= 64 else ""
    failures = await repo.failures_page(db, announcement.id, start, PAGE_SIZE + 1)
    sender = await db.get(User, announcement.sender_id) if announcement.sender_id else None
    course = (
        await db.get(Course, announcement.audience_course_id)
        if announcement.audience_course_id
        else None
    )
    base = f"{HOME}/{announcement.id}"
    return render(
        request,
        "announcement.html",
        {
            "a": announcement,
            "figures": figures,
            "done_count": figures.sent + figures.failed + figures.skipped + figures.cancelled,
            "sender": sender,
            "course": course,
            "controls": [
                action.value for action, states in CONTROLS.items() if announcement.state in states
            ],
            "may_resend": announcement.state in RESEND_FROM and figures.failed > 0,
            "moving": announcement.state in MOVING,
            "refresh": REFRESH_SECONDS,
            "failures": failures[:PAGE_SIZE],
            "failures_next": (
                f"{base}?after={failures[PAGE_SIZE - 1].user_id}"
                if len(failures) > PAGE_SIZE
                else None
            ),
            "failures_first": f"{base}#failures" if start else None,
            "back": base,
        },
    )


def _control_form(action: Control) -> Any:
    async def route(
        announcement_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
    ) -> Response:
        async def run(actor: Actor) -> str:
            await services.gate.ensure()
            announcement = await use_cases.control(
                db,
                _sender(posted.console),
                record_id(announcement_id, "announcement"),
                action,
            )
            return f"{announcement.subject}: {announcement.state}."

        back = f"{HOME}/{announcement_id}"
        return await act(posted, db, services.settings, SEND, run, back=back)

    route.__name__ = f"console_{action.value}_announcement"
    return route


for _action in Control:
    router.add_api_route(
        f"/announcements/{{announcement_id}}/{_action.value}",
        _control_form(_action),
        methods=["POST"],
    )


@router.post("/announcements/{announcement_id}/resend-failed")
async def resend_failed(
    announcement_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        await services.gate.ensure()
        _, reopened = await use_cases.resend_failed(
            db,
            _sender(posted.console),
            record_id(announcement_id, "announcement"),
            services.settings,
        )
        return f"Re-sending to {reopened} recipient{'s' if reopened != 1 else ''}."

    back = f"{HOME}/{announcement_id}"
    return await act(posted, db, services.settings, SEND, run, back=back)
