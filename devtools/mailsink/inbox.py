"""A small web inbox for the mail sink, plus a JSON API to read mail and switch faults.

A person running ``authflow dev`` reads the one-time code here; e2e tests and the
benchmark (possibly in another process) use the JSON endpoints.  Emails are
untrusted input: every value goes through Jinja2 autoescaping, and a message's own
HTML is only served from ``/messages/{id}/html`` under ``Content-Security-Policy:
sandbox`` (no scripts, opaque origin, no remote loads).

The endpoints are ``async def`` on purpose: they then run on the loop thread that
owns the sink, which :class:`~devtools.mailsink.sink.MailSink` requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from devtools.mailsink.sink import (
    FaultMode,
    MailSink,
    PortInUseError,
    StoredMessage,
    bind_listening_sockets,
)

# Our own pages: inline CSS only, frames only from ourselves, nothing else loads.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
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

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{% block head %}{% endblock %}
<title>{% block title %}mail sink{% endblock %}</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd;
          vertical-align: top; }
 tr:hover td { background: #f5f7ff; }
 a { color: #1a4fd6; text-decoration: none; } a:hover { text-decoration: underline; }
 .muted { color: #777; } .bar { margin-bottom: 1rem; }
 .fault { background: #fde8e8; color: #8a1c1c; padding: .1rem .4rem; border-radius: 3px; }
 pre { background: #f6f6f6; padding: .8rem; white-space: pre-wrap;
       overflow-wrap: anywhere; }
 iframe { width: 100%; height: 32rem; border: 1px solid #ccc; }
 dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
 dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
</style></head>
<body>{% block body %}{% endblock %}</body></html>
"""

_LIST = """{% extends "base.html" %}
{% block head %}<meta http-equiv="refresh" content="5">{% endblock %}
{% block title %}mail sink ({{ messages|length }}){% endblock %}
{% block body %}
<h1>Mail sink</h1>
<p class="bar muted">{{ messages|length }} message(s) &middot; SMTP {{ smtp }}
 &middot; attempts {{ stats.attempts }}, accepted {{ stats.accepted }}
 &middot; faults: <span class="{{ 'fault' if faults.mode != 'ok' else '' }}">{{ faults.mode }}
 {%- if faults.transient_ratio %}, transient_ratio {{ faults.transient_ratio }}{% endif %}</span>
 &middot; <a href="{{ api_url }}">JSON</a></p>
{% if messages %}
<table><thead><tr><th>#</th><th>Received</th><th>To</th><th>Subject</th><th>From</th></tr></thead>
<tbody>
{% for m in messages %}
<tr><td>{{ m.id }}</td><td class="muted">{{ m.received_at|when }}</td>
<td>{{ m.rcpt_tos|join(", ") }}</td>
<td><a href="{{ url_for('message_page', message_id=m.id) }}">
 {{- m.subject or "(no subject)" }}</a></td>
<td class="muted">{{ m.mail_from }}</td></tr>
{% endfor %}
</tbody></table>
{% else %}<p>No mail yet. This page refreshes every 5 seconds.</p>{% endif %}
{% endblock %}
"""

_MESSAGE = """{% extends "base.html" %}
{% block title %}#{{ m.id }} {{ m.subject }}{% endblock %}
{% block body %}
<p class="bar"><a href="{{ url_for('inbox_page') }}">&larr; inbox</a></p>
<h1>{{ m.subject or "(no subject)" }}</h1>
<dl>
<dt>Received</dt><dd>{{ m.received_at|when }}</dd>
<dt>Envelope from</dt><dd>{{ m.mail_from }}</dd>
<dt>Envelope to</dt><dd>{{ m.rcpt_tos|join(", ") }}</dd>
</dl>
<h2>Text</h2>
{% if m.text %}<pre>{{ m.text }}</pre>{% else %}<p class="muted">(no text/plain part)</p>{% endif %}
<h2>HTML</h2>
{% if m.html %}
<p><a href="{{ html_url }}" target="_blank" rel="noopener noreferrer">open the HTML part alone</a>
 <span class="muted">(sandboxed: no scripts, no remote images)</span></p>
<iframe src="{{ html_url }}" sandbox="allow-popups allow-popups-to-escape-sandbox"
 referrerpolicy="no-referrer" title="HTML part"></iframe>
{% else %}<p class="muted">(no text/html part)</p>{% endif %}
<h2>Headers</h2>
<dl>{% for name, value in headers %}<dt>{{ name }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>
<p><a href="{{ json_url }}">JSON</a></p>
{% endblock %}
"""


def _format_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _templates() -> Environment:
    env = Environment(
        loader=DictLoader({"base.html": _BASE, "list.html": _LIST, "message.html": _MESSAGE}),
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


def create_inbox_app(sink: MailSink) -> FastAPI:
    """The inbox as an ASGI app bound to ``sink`` (mountable under a prefix)."""
    app = FastAPI(title="authflow mail sink", docs_url=None, redoc_url=None)
    app.state.sink = sink
    _add_pages(app, sink)
    _add_api(app, sink)
    return app


def _add_pages(app: FastAPI, sink: MailSink) -> None:
    @app.get("/", response_class=HTMLResponse, name="inbox_page")
    async def inbox_page(request: Request) -> HTMLResponse:
        body = _ENV.get_template("list.html").render(
            messages=list(reversed(sink.messages)),
            stats=sink.stats(),
            faults=sink.faults.as_dict(),
            smtp=f"{sink.host}:{sink.port}",
            api_url=request.url_for("list_messages"),
            url_for=request.url_for,
        )
        return _html(body)

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
    async def list_messages(to: str | None = None) -> list[dict[str, Any]]:
        """Messages oldest first; ``?to=`` filters on the envelope recipient."""
        messages = sink.messages if to is None else sink.messages_to(to)
        return [message_json(m) for m in messages]

    @app.get("/api/messages/{message_id}", name="get_message")
    async def get_message(message_id: int) -> dict[str, Any]:
        return message_json(_get_or_404(sink, message_id))

    @app.delete("/api/messages")
    async def clear_messages() -> dict[str, int]:
        return {"deleted": sink.clear()}

    @app.get("/api/faults")
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
