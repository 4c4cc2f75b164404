"""ASGI middleware: body size limit, request ids and latency metrics."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authflow import metrics
from authflow.logging import request_id_var


class BodyTooLarge(HTTPException):
    """Raised while the body is read; an HTTPException so that FastAPI's body parsing
    passes it through to the error handler (413 in the contract's shape)."""

    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before the app reads them all,
    whether or not the client sent Content-Length."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        uploads: re.Pattern[str] | None = None,
        upload_max_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # File uploads (paths matching ``uploads``) have their own, larger limit; over it
        # they answer 413 ``file_too_large``.
        self.uploads = uploads
        self.upload_max_bytes = upload_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, code = self.max_bytes, "payload_too_large"
        if self.uploads is not None and self.uploads.match(scope.get("path", "")):
            # Room for the multipart envelope around a file of the largest accepted size.
            max_bytes, code = self.upload_max_bytes + 64 * 1024, "file_too_large"
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await _send_413(send, code)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, code)


async def _send_413(send: Send, code: str = "payload_too_large") -> None:
    body = json.dumps(
        {"error": {"code": code, "message": "The request body is too large."}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """A request id on every log line and response; latency per route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode()[:64]
        request_id = incoming if incoming.isprintable() and incoming else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.REQUEST_LATENCY.labels(scope["method"], _route(scope), str(status)).observe(
                time.perf_counter() - started
            )
            request_id_var.reset(token)


def _route(scope: MutableMapping[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
