"""Logging: text or JSON lines, each carrying the request id or workflow id, with
codes, passwords and tokens redacted on the way out (a second line of defence: the
code never logs them in the first place)."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_REDACTIONS = [
    (
        re.compile(
            r"(?i)(\"?(?:password|new_password|current_password|otp|code|refresh_token|access_token|token|secret|authorization)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,}&]+)"
        ),
        r"\1[redacted]",
    ),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?<!\d)\d{6}(?!\d)"), "[redacted-digits]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.workflow_id = _workflow_id()
        return True


def _workflow_id() -> str | None:
    try:
        from temporalio import activity

        if activity.in_activity():
            return activity.info().workflow_id
    except Exception:  # noqa: S110 - outside Temporal there is simply no id
        pass
    return None


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
            "workflow_id": getattr(record, "workflow_id", None),
            # A security event's fields (``api.auth.events``): never a secret.
            "event": getattr(record, "event", None),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps({k: v for k, v in entry.items() if v is not None})


def configure_logging(fmt: str = "text", level: str = "INFO", *, process: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{process} " if process else ""
        handler.setFormatter(
            RedactingFormatter(f"%(asctime)s {prefix}%(levelname)s %(name)s %(ctx)s %(message)s")
        )
        handler.addFilter(_ctx_field)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aiosqlite", "sqlalchemy.engine", "mail.log", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _ctx_field(record: logging.LogRecord) -> bool:
    rid = getattr(record, "request_id", None)
    wid = getattr(record, "workflow_id", None)
    record.ctx = f"[req={rid}]" if rid else f"[wf={wid}]" if wid else ""
    return True
