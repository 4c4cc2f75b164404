"""One place that turns every error into the contract's shape:
``{"error": {"code": "<snake_case>", "message": "..."}}`` (422 may add ``details``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from temporalio.service import RPCError

from authflow.errors import AppError

log = logging.getLogger("authflow.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _with_challenge(status: int, headers: Mapping[str, str] | None) -> dict[str, str]:
    """RFC 6750: a 401 names the scheme the client should use (clients and proxies rely on it)."""
    merged = dict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    return merged


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = error_body(exc.code, exc.message)
    body["error"].update(exc.extra)
    return JSONResponse(
        body, status_code=exc.status, headers=_with_challenge(exc.status, exc.headers)
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    broken = _json_decode_error(exc)
    if broken is not None:
        return JSONResponse(error_body("validation_error", broken, []), status_code=422)
    details = [_safe_detail(err) for err in exc.errors()]
    if any(d["loc"][:1] == ["path"] for d in details):
        # Every path parameter is an id (``api.deps.PathId``) and ids are opaque to
        # clients: one that cannot exist is simply not found, as the contract answers
        # an unknown one, whatever else the request got wrong.
        return JSONResponse(error_body("not_found", "Not found."), status_code=404)
    code = _validation_code(details)
    message = "; ".join(
        f"{'.'.join(map(str, d['loc'][1:])) or 'body'}: {d['msg']}" for d in details
    )
    return JSONResponse(error_body(code, message or "Invalid request.", details), status_code=422)


def _json_decode_error(exc: RequestValidationError) -> str | None:
    """FastAPI reports a broken JSON body as a field named after the character offset
    (``9: JSON decode error``); say instead, in words, where the JSON breaks."""
    for err in exc.errors():
        if err.get("type") != "json_invalid":
            continue
        loc = list(err.get("loc", ()))
        reason = str((err.get("ctx") or {}).get("error") or "it cannot be parsed")
        position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        text = exc.body if isinstance(exc.body, str) else None
        if position is None or text is None:
            return f"The body is not valid JSON: {reason}."
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        return (
            f"The body is not valid JSON: {reason[:1].lower() + reason[1:]} "
            f"at line {line}, column {column}."
        )
    return None


def _safe_detail(err: dict[str, Any]) -> dict[str, Any]:
    # Never echo the input back: it may be a password or a code.
    return {
        "loc": list(err.get("loc", ())),
        "msg": str(err.get("msg", "")),
        "type": err.get("type"),
    }


# Validators raise PydanticCustomError with these types; the first one found names the error.
_CONTRACT_CODES = ("weak_password", "invalid_email", "invalid_name")


def _validation_code(details: list[dict[str, Any]]) -> str:
    for detail in details:
        if detail.get("type") in _CONTRACT_CODES:
            return str(detail["type"])
    return "validation_error"


_UNPARSABLE_BODY = "There was an error parsing the body"


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _http_error(routes: Iterable[BaseRoute]) -> Handler:
    """Starlette's errors (404, 405, a body that is not text) in the contract's shape.

    A 405's ``Allow`` lists every method the path accepts (RFC 9110 §15.5.6): the router
    answers it from the first route whose path matched, which names only its own methods
    (``PATCH /api/v1/me/email-preferences`` said ``GET``, though PUT works too), so every
    route is asked here, on a 405 only."""
    with_methods = [route for route in routes if isinstance(route, Route) and route.methods]

    def allowed(request: Request, named: str | None) -> str | None:
        methods = {m.strip() for m in (named or "").split(",") if m.strip()}
        for route in with_methods:
            if route.matches(request.scope)[0] != Match.NONE:
                methods |= route.methods or set()
        return ", ".join(sorted(methods)) if methods else named

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            # A body that is not even text (bad UTF-8): a validation error like any bad JSON.
            return JSONResponse(
                error_body("validation_error", "The body is not valid UTF-8 JSON.", []),
                status_code=422,
            )
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        headers = _with_challenge(exc.status_code, getattr(exc, "headers", None))
        if exc.status_code == 405:
            allow = allowed(request, headers.pop("Allow", None))
            if allow:
                headers["Allow"] = allow
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)

    return handle


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    """The database or Temporal could not be reached: a clear, retryable 503."""
    log.warning(
        "dependency unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return JSONResponse(
        error_body(
            "unavailable", "A service this request needs is unavailable; try again shortly."
        ),
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _database_refused(request: Request, exc: Exception) -> JSONResponse:
    """A value the database itself refuses as data (SQLSTATE class 22: a NUL in text,
    a malformed number or date, a string over a column's length) came from the request:
    what validation upstream missed is still the client's 422, not a 500.  The
    request's transaction rolls back, so nothing is half written."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(state, str) and state.startswith("22"):
        return JSONResponse(
            error_body("validation_error", "A value in the request is not valid."),
            status_code=422,
        )
    return await _unexpected(request, exc)


# What a dependency that is down or overwhelmed raises: answered 503 ``unavailable``.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,  # every database connection busy under a burst: retry later
    RPCError,
    ConnectionError,
    TimeoutError,
    OSError,
)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("internal_error", "An unexpected error occurred."), status_code=500
    )


def install_error_handlers(app: FastAPI, routes: Iterable[BaseRoute] = ()) -> None:
    """``routes``: the app's routes, whose methods a 405's ``Allow`` lists."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error(routes))
    for unavailable in DEPENDENCY_ERRORS:
        app.add_exception_handler(unavailable, _dependency_down)
    app.add_exception_handler(DBAPIError, _database_refused)
    app.add_exception_handler(Exception, _unexpected)
