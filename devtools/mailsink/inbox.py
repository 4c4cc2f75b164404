"""A small web inbox for the mail sink, plus a JSON API to read mail and switch faults.

A person running ``authflow dev`` reads the one-time code here; e2e tests and the
benchmark (possibly in another process) use the JSON endpoints.  Emails are
untrusted input: every value goes through Jinja2 autoescaping, and a message's own
HTML is only served from ``/messages/{id}/html`` under ``Content-Security-Policy:
sandbox`` (no scripts, opaque origin, no remote loads).

The list filters by recipient and subject, pages, shows each message's code (or first
line), deletes one message or all, and updates itself without reloading (a small script
fetches the list's fragment).  Every error, an unknown path included, answers in the
contract's shape ``{"error": {"code", "message"}}``.

The endpoints are ``async def`` on purpose: they then run on the loop thread that
owns the sink, which :class:`~devtools.mailsink.sink.MailSink` requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from devtools.mailsink.sink import (
    FaultMode,
    MailSink,
    PortInUseError,
    StoredMessage,
    bind_listening_sockets,
)

# Our own pages: inline CSS, our one script, frames and forms only to ourselves.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGES_DIR = Path(__file__).parent / "pages"
PAGE_SIZE = 50
CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
# The email's HTML: sandboxed (scripts off, opaque origin), no remote content (no
# tracking pixels), but links may open in a new tab so a verification link works.
MESSAGE_HTML_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'self'"
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _format_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(PAGES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    env.filters["when"] = _format_time
    return env


_ENV = _templates()


def message_json(message: StoredMessage) -> dict[str, Any]:
    """The JSON shape of a message (the raw bytes are left out)."""
    return {
        "id": message.id,
        "received_at": message.received_at,
        "from": message.mail_from,
        "to": list(message.rcpt_tos),
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
    }


@dataclass(frozen=True)
class Row:
    """A message as the list shows it: its code, or else its first line."""

    message: StoredMessage
    code: str | None
    first_line: str


def list_row(message: StoredMessage) -> Row:
    codes = CODE_RE.findall(message.text)
    first = next((line.strip() for line in message.text.splitlines() if line.strip()), "")
    return Row(message, codes[0] if codes else None, first[:120])


def matching(messages: list[StoredMessage], to: str = "", subject: str = "") -> list[StoredMessage]:
    """Case-insensitive substring filters on the envelope recipients and the subject."""
    to, subject = to.strip().lower(), subject.strip().lower()
    return [
        m
        for m in messages
        if (not to or any(to in rcpt.lower() for rcpt in m.rcpt_tos))
        and (not subject or subject in m.subject.lower())
    ]


class FaultsUpdate(BaseModel):
    """Body of ``PUT /api/faults``; fields left out are unchanged."""

    model_config = ConfigDict(extra="forbid")

    mode: FaultMode | None = None
    transient_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None


def _html(body: str, *, csp: str = PAGE_CSP, status_code: int = 200) -> HTMLResponse:
    headers = {"Content-Security-Policy": csp, **_SECURITY_HEADERS}
    return HTMLResponse(body, status_code=status_code, headers=headers)


def _get_or_404(sink: MailSink, message_id: int) -> StoredMessage:
    message = sink.get(message_id)
    if message is None:
        raise HTTPException(status_code=404, detail=f"no message {message_id}")
    return message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=_SECURITY_HEADERS
    )


_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 409: "conflict", 403: "forbidden"}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _ERROR_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 404 and message == "Not Found":
        message = "No such page or endpoint in the mail sink."
    return _error(exc.status_code, code, message)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message = "; ".join(
        f"{'.'.join(map(str, e.get('loc', ())[1:])) or 'body'}: {e.get('msg', '')}"
        for e in exc.errors()
    )
    return _error(422, "validation_error", message or "Invalid request.")


def create_inbox_app(sink: MailSink) -> FastAPI:
    """The inbox as an ASGI app bound to ``sink`` (mountable under a prefix)."""
    app = FastAPI(title="authflow mail sink", docs_url=None, redoc_url=None)
    app.state.sink = sink
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    _add_pages(app, sink)
    _add_api(app, sink)
    return app


def _same_origin(request: Request) -> None:
    """The delete forms are for this page only: a browser names the page's origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(status_code=403, detail="This form must come from the inbox itself.")


def _back_to_list(request: Request) -> RedirectResponse:
    """Back to the list as the form's page showed it (its filters and page travel in the
    form's query string: the pages send no Referer)."""
    query = urlencode(
        {k: v for k in ("to", "subject", "page") if (v := request.query_params.get(k, ""))}
    )
    target = str(request.url_for("inbox_page"))
    return RedirectResponse(f"{target}?{query}" if query else target, status_code=303)


@dataclass(frozen=True)
class ListQuery:
    """What the list shows: its filters and page (the page's query string)."""

    to: str
    subject: str
    page: int


def _list_query(
    to: str = Query("", max_length=320),
    subject: str = Query("", max_length=200),
    page: int = Query(1, ge=1),
) -> ListQuery:
    return ListQuery(to, subject, page)


ListDep = Annotated[ListQuery, Depends(_list_query)]


def _list_context(request: Request, sink: MailSink, wanted: ListQuery) -> dict[str, Any]:
    to, subject, page = wanted.to, wanted.subject, wanted.page
    found = list(reversed(matching(sink.messages, to, subject)))
    pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    filters = {"to": to, "subject": subject}
    base = str(request.url_for("inbox_page"))

    def page_link(number: int) -> str:
        query = urlencode({k: v for k, v in {**filters, "page": number}.items() if v})
        return f"{base}?{query}"

    here = urlencode({k: v for k, v in {**filters, "page": page}.items() if v})
    return {
        "rows": [list_row(m) for m in shown],
        "total": len(found),
        "page": page,
        "pages": pages,
        "page_link": page_link,
        "filters": filters,
        "stats": sink.stats(),
        "faults": sink.faults.as_dict(),
        "smtp": f"{sink.host}:{sink.port}",
        "api_url": request.url_for("list_messages"),
        "faults_url": request.url_for("get_faults"),
        "page_url": base,
        "clear_url": request.url_for("clear_messages_page"),
        "script_url": request.url_for("inbox_script"),
        "fragment_url": f"{request.url_for('inbox_rows')}?{here}",
        "here": here,
        "url_for": request.url_for,
    }


def _add_pages(app: FastAPI, sink: MailSink) -> None:
    @app.get("/", response_class=HTMLResponse, name="inbox_page")
    async def inbox_page(request: Request, wanted: ListDep) -> HTMLResponse:
        context = _list_context(request, sink, wanted)
        return _html(_ENV.get_template("list.html").render(context))

    @app.get("/rows", response_class=HTMLResponse, name="inbox_rows")
    async def inbox_rows(request: Request, wanted: ListDep) -> HTMLResponse:
        """The list alone, for the page's live updates."""
        context = _list_context(request, sink, wanted)
        return _html(_ENV.get_template("rows.html").render(context))

    @app.get("/inbox.js", name="inbox_script")
    async def inbox_script() -> FileResponse:
        return FileResponse(
            PAGES_DIR / "inbox.js", media_type="text/javascript", headers=_SECURITY_HEADERS
        )

    @app.post("/messages/{message_id}/delete", name="delete_message_page")
    async def delete_message_page(request: Request, message_id: int) -> RedirectResponse:
        _same_origin(request)
        if not sink.delete(message_id):
            raise HTTPException(status_code=404, detail=f"no message {message_id}")
        return _back_to_list(request)

    @app.post("/clear", name="clear_messages_page")
    async def clear_messages_page(request: Request) -> RedirectResponse:
        _same_origin(request)
        sink.clear()
        return RedirectResponse(str(request.url_for("inbox_page")), status_code=303)

    @app.get("/messages/{message_id}", response_class=HTMLResponse, name="message_page")
    async def message_page(request: Request, message_id: int) -> HTMLResponse:
        message = _get_or_404(sink, message_id)
        body = _ENV.get_template("message.html").render(
            m=message,
            headers=message.header_items(),
            html_url=request.url_for("message_html", message_id=message_id),
            json_url=request.url_for("get_message", message_id=message_id),
            url_for=request.url_for,
        )
        return _html(body)

    @app.get("/messages/{message_id}/html", name="message_html")
    async def message_html(message_id: int) -> Response:
        message = _get_or_404(sink, message_id)
        if not message.html:
            raise HTTPException(status_code=404, detail=f"message {message_id} has no HTML part")
        return _html(message.html, csp=MESSAGE_HTML_CSP)


def _add_api(app: FastAPI, sink: MailSink) -> None:
    @app.get("/api/messages", name="list_messages")
    async def list_messages(
        to: str | None = None, subject: str | None = None
    ) -> list[dict[str, Any]]:
        """Messages oldest first; ``?to=`` filters on the envelope recipient (exact,
        case-insensitive), ``?subject=`` on the subject (substring, case-insensitive)."""
        messages = sink.messages if to is None else sink.messages_to(to)
        if subject:
            messages = matching(messages, subject=subject)
        return [message_json(m) for m in messages]

    @app.get("/api/messages/{message_id}", name="get_message")
    async def get_message(message_id: int) -> dict[str, Any]:
        return message_json(_get_or_404(sink, message_id))

    @app.delete("/api/messages/{message_id}")
    async def delete_message(message_id: int) -> dict[str, int]:
        if not sink.delete(message_id):
            raise HTTPException(status_code=404, detail=f"no message {message_id}")
        return {"deleted": 1}

    @app.delete("/api/messages")
    async def clear_messages() -> dict[str, int]:
        return {"deleted": sink.clear()}

    @app.get("/api/faults", name="get_faults")
    async def get_faults() -> dict[str, Any]:
        return sink.faults.as_dict()

    @app.put("/api/faults")
    async def put_faults(update: FaultsUpdate) -> dict[str, Any]:
        faults = sink.faults
        if update.seed is not None:
            faults.reseed(update.seed)
        if update.transient_ratio is not None:
            faults.transient_ratio = update.transient_ratio
        if update.mode is not None:
            try:
                faults.mode = update.mode
            except PortInUseError as exc:  # the port was taken while we were "down"
                raise HTTPException(status_code=409, detail=str(exc)) from exc
        return faults.as_dict()

    @app.get("/api/stats")
    async def get_stats() -> dict[str, int]:
        return sink.stats()

    @app.delete("/api/stats")
    async def reset_stats() -> dict[str, int]:
        sink.reset_stats()
        return sink.stats()


# --------------------------------------------------------------------------- serving


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host process owns Ctrl+C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class InboxServer:
    """A running inbox; ``await stop()`` shuts it down."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve_inbox(
    sink: MailSink, host: str = "127.0.0.1", port: int = 8025, *, startup_timeout: float = 10.0
) -> InboxServer:
    """Start the inbox web server in the running loop and return once it serves.

    The port is bound here first, so a taken port raises PortInUseError instead of
    uvicorn logging an error and exiting; ``port=0`` picks a free one.
    """
    sockets = bind_listening_sockets(host, port)
    bound_port = sockets[0].getsockname()[1]
    config = uvicorn.Config(
        create_inbox_app(sink),
        host=host,
        port=bound_port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _EmbeddedServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=sockets))
    await _wait_started(server, task, startup_timeout)
    return InboxServer(server=server, task=task, host=host, port=bound_port)


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not server.started:
        if task.done():
            task.result()  # re-raises the start-up error
            raise RuntimeError("inbox server exited during start-up")
        if loop.time() > deadline:
            server.should_exit = True
            raise TimeoutError(f"inbox server did not start within {timeout}s")
        await asyncio.sleep(0.01)
