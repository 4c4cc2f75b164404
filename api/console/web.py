"""Console plumbing: templates, security headers, flash messages, and the route class
that turns a signed-out visitor, a refused form or a bad query into a page, never a 500.

The console's pages are server-rendered with Jinja2 (autoescaping on for everything);
its only scripts are two small files served from ``/admin/assets``, so the Content
Security Policy can forbid every inline script and style.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.errors import error_body
from authflow.errors import AppError
from authflow.settings import Settings

from .signed import sign, unsign

PREFIX = "/admin"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "console"
SESSION_COOKIE = "authflow_console"
FLASH_COOKIE = "authflow_console_flash"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin requests keep their Origin header (checked on every POST).
    "Referrer-Policy": "same-origin",
    # Pages show personal data and the sign-in sets the session cookie: never cached,
    # by HTTP/1.0 caches either.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every template, whatever its name
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["pathquote"] = lambda value: quote(str(value), safe="")
templates.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M:%S") if value else ""
templates.filters["clock"] = lambda value: value.strftime("%H:%M:%S") if value else ""


# -- errors the route class renders ------------------------------------------------------


class SignedOut(Exception):
    """No valid console session: sign in again."""


class CsrfRefused(Exception):
    """A POST without the form token of the signer-in's session (or from another origin)."""


class NoConsoleAccess(Exception):
    """Signed in, but neither ADMIN nor MANAGER."""


class PageError(Exception):
    """A page cannot be shown (no permission, no such record): rendered with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConsoleRoute(APIRoute):
    """Every console route: the console's refusals become pages (or, under /admin/api,
    JSON errors), and each response carries the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except SignedOut:
                response = _signed_out(request)
            except CsrfRefused:
                response = error_page(
                    request,
                    403,
                    "This form was refused: it has expired or did not come from this console. "
                    "Reload the page and try again.",
                )
            except NoConsoleAccess:
                response = _no_access(request)
            except PageError as exc:
                response = error_page(request, exc.status, exc.message)
            except AppError as exc:
                response = error_page(request, exc.status, exc.message)
            except RequestValidationError:
                response = error_page(request, 400, "The request was not understood.")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(f"{PREFIX}/api/")


def _no_access(request: Request) -> Response:
    if _is_api(request):
        return JSONResponse(
            error_body("forbidden", "The console is for ADMINs and MANAGERs."), status_code=403
        )
    return render(request, "forbidden.html", {}, status=403)


def _signed_out(request: Request) -> Response:
    if _is_api(request):
        return JSONResponse(
            error_body("not_authenticated", "Sign in to the console first."), status_code=401
        )
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += f"?{request.url.query}"
    response = redirect(f"{PREFIX}/login?next={quote(safe_next(target), safe='')}")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse(error_body("error", message), status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


# -- rendering ---------------------------------------------------------------------------


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> HTMLResponse:
    """Render a page; the flash message of the previous redirect is shown once.

    ``request.state.console`` (set by the session dependency) gives the layout the
    signed-in principal, the navigation and the form token.
    """
    flash = read_flash(request)
    values: dict[str, Any] = {
        "request": request,
        "console": getattr(request.state, "console", None),
        "flash": flash,
        "prefix": PREFIX,
        **context,
    }
    html = templates.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def redirect(url: str, *, flash: Flash | None = None, settings: Settings | None = None) -> Response:
    """303 See Other: after a POST the browser GETs the page (no re-post on reload)."""
    response = RedirectResponse(url, status_code=303)
    if flash is not None and settings is not None:
        set_flash(response, settings, flash)
    return response


def safe_next(url: str | None, default: str = f"{PREFIX}/") -> str:
    """Only a path inside the console: never another site (no open redirect)."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or "\\" in url or not url.isprintable():
        return default
    if parts.path != PREFIX and not parts.path.startswith(f"{PREFIX}/"):
        return default
    if parts.path.startswith(f"{PREFIX}/api/") or parts.path.startswith(f"{PREFIX}/login"):
        return default
    return url


# -- flash messages: one signed cookie, shown by the next page --------------------------


@dataclass(frozen=True)
class Flash:
    kind: str  # "ok" or "error"
    text: str


def set_flash(response: Response, settings: Settings, flash: Flash) -> None:
    data = json.dumps({"k": flash.kind, "t": flash.text[:500]}, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")
    response.set_cookie(
        FLASH_COOKIE,
        sign(settings, "console-flash", payload),
        max_age=60,
        path=PREFIX,
        httponly=True,
        samesite="strict",
    )


def read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    settings: Settings = request.app.state.services.settings
    payload = unsign(settings, "console-flash", raw)
    if payload is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        kind, text = str(data["k"]), str(data["t"])
    except (ValueError, KeyError, TypeError):
        return None
    return Flash("error" if kind == "error" else "ok", text)
