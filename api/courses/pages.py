"""The public course page, ``GET /courses/{slug}``: where the learning emails link
(``PUBLIC_BASE_URL/courses/{slug}``) until a frontend serves that path.  It shows what
anyone may see of a course (title, summary, description, outline) and nothing that needs
a sign-in; a learner's own lessons are read through the API.  A draft, or a key that
names nothing, is a 404 page.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import PATH_ID_PATTERN, DbSession
from authflow.courses import repository as repo
from authflow.courses.markdown import render
from authflow.courses.models import CourseStatus

pages = APIRouter(tags=["courses"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "public"),
    autoescape=select_autoescape(default=True),
)
_KEY = re.compile(PATH_ID_PATTERN)
_MAX_KEY = 120
# Nothing loads from elsewhere but images an author put in the description.
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https:",
}


@pages.get(
    "/courses/{key}",
    response_class=HTMLResponse,
    responses={404: {"description": "No such course (or a draft)"}},
)
async def course_page(key: str, db: DbSession) -> HTMLResponse:
    """The public page of a published (or archived) course, by slug or id."""
    course = None
    if len(key) <= _MAX_KEY and _KEY.match(key):
        course = await repo.course_by_id_or_slug(db, key)
    if course is None or course.status == CourseStatus.DRAFT:
        html = _templates.get_template("course.html").render(course=None)
        return HTMLResponse(html, status_code=404, headers=_HEADERS)
    outline = await repo.outline(db, course.id)
    html = _templates.get_template("course.html").render(
        course=course,
        archived=course.status == CourseStatus.ARCHIVED,
        description_html=render(course.description),
        modules=[(m, outline.lessons.get(m.id, [])) for m in outline.modules],
    )
    return HTMLResponse(html, headers=_HEADERS)
