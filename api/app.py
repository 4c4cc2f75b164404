"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from api.admin.endpoints import router as admin_router
from api.admission import HashingAdmissionMiddleware
from api.announcements.endpoints import router as announcements_router
from api.auth.endpoints import router as auth_router
from api.codec_server import PREFIX as CODEC_PREFIX
from api.codec_server import router as codec_router
from api.console import console_routers
from api.courses.content import UPLOAD_PATH
from api.courses.content import router as content_router
from api.courses.endpoints import router as courses_router
from api.courses.enrollments import pages as certificate_pages
from api.courses.enrollments import router as enrollments_router
from api.courses.pages import pages as course_pages
from api.docs import install_docs
from api.errors import install_error_handlers
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from api.openapi import finish_schema, responses
from api.ops import router as ops_router
from api.ops import static_router
from api.preferences.endpoints import pages as preference_pages
from api.preferences.endpoints import router as preferences_router
from api.quizzes.endpoints import router as quizzes_router
from api.rate_limit import ClientRateLimiter, ClientRateLimitMiddleware
from api.services import Services
from authflow.heap import freeze_startup_objects
from authflow.security.passwords import hashing_threads
from authflow.settings import Settings, get_settings
from authflow.temporal import connect

DESCRIPTION = """Account lifecycle API. Every email is sent by a Temporal workflow: the API
validates, writes, commits, starts the workflow and answers without waiting for mail.

Errors always have the shape `{"error": {"code": "<snake_case>", "message": "..."}}`."""


# The order requests are matched in.  FastAPI tries the included routers one after the
# other and each route of a router before the one that answers costs a regular-expression
# match (twice for the answering router's own routes), so the routes a learner or a probe
# calls most come first and the admin console last (docs/benchmarks.md, "The quiz start's
# CPU").  No two routes answer the same method and path, so the order changes no answer:
# tests/unit/test_routes.py checks that every route is reached whatever comes before it.
ROUTERS: tuple[APIRouter, ...] = (
    ops_router,
    auth_router,
    quizzes_router,
    courses_router,
    content_router,
    enrollments_router,
    preferences_router,
    announcements_router,
    admin_router,
    preference_pages,
    certificate_pages,
    course_pages,
    codec_router,
    *console_routers,
    static_router,
)


DOC_SECTIONS = (
    "auth",
    "admin",
    "email preferences",
    "announcements",
    "courses",
    "course content",
    "enrollment and progress",
    "quizzes",
    "operations",
)


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # lazy: the API starts (and /readyz says why) even while Temporal is down.
        client = temporal or await connect(settings, lazy=True)
        services = Services.build(settings, client)
        services.hasher.warm_up()
        app.state.services = services
        relay = asyncio.create_task(services.outbox.relay_forever())
        freeze_startup_objects()
        yield
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await services.close()

    app = FastAPI(
        title="authflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages, without a CDN
        redoc_url=None,
        # Every route: BodyLimitMiddleware answers 413 to any body over MAX_BODY_BYTES
        # (or an upload over MAX_UPLOAD_BYTES) before the route runs.
        responses=responses(413),
        # The reference's sections in reading order (the routes' order is ROUTERS').
        openapi_tags=[{"name": name} for name in DOC_SECTIONS],
    )
    install_docs(app)
    install_error_handlers(app, routes=[route for router in ROUTERS for route in router.routes])
    _finish_schema_once(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        HashingAdmissionMiddleware, hash_workers=hashing_threads(settings.hash_workers)
    )
    # Outside the admission door: a client over its limit never takes a hashing place.
    app.state.client_limiter = ClientRateLimiter(settings.client_rate_limit_per_minute)
    app.add_middleware(
        ClientRateLimitMiddleware,
        limiter=app.state.client_limiter,
        trusted_proxies=settings.trusted_proxy_set(),
    )
    # Only the Temporal Web UI's calls to /codec are cross-origin: nothing else answers
    # CORS (with credentials) to that origin.
    app.add_middleware(PathCORSMiddleware, prefix=CODEC_PREFIX, origins=_codec_origins(settings))
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        uploads=UPLOAD_PATH,
        upload_max_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    return app


class PathCORSMiddleware:
    """CORS for the paths under ``prefix`` only."""

    def __init__(self, app: ASGIApp, prefix: str, origins: list[str]) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["Content-Type", "X-Namespace", "Authorization"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _codec_origins(settings: Settings) -> list[str]:
    """The Temporal Web UI calls /codec from the browser: allow its origin."""
    origin = settings.temporal_ui_url.rstrip("/")
    origins = {origin}
    if "127.0.0.1" in origin:
        origins.add(origin.replace("127.0.0.1", "localhost"))
    return sorted(origins)


def _finish_schema_once(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_schema(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
