"""CPU per request of the learner's routes, in process: ``python -m devtools.request_cost``.

The learn benchmark reports the API's CPU per request over a whole run (HTTP server,
connections and all); this isolates the application's share of one request, to compare
two commits quickly (run it in a worktree of each, interleaved: docs/benchmarks.md,
"Learning").  It seeds a fresh SQLite database (or a new PostgreSQL database with
``--db postgresql``) with the bench's catalogue, enrols learners directly, then calls
the ASGI app directly (no server, no client), one request at a time, and prints the
process CPU (every thread) per request of each route.  Temporal is not needed: no route
measured here calls it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

API = "/api/v1"
ROUTES = ("catalogue", "catalogue_popular", "catalogue_next", "outline", "lesson", "complete")
Request = tuple[str, str, str | None, str]  # method, path, bearer token, query string


async def call(
    app: FastAPI, method: str, path: str, token: str | None = None, query: str = ""
) -> tuple[int, Any]:
    """One request through the ASGI app; its status and parsed JSON body."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"request-cost")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    answered = asyncio.Event()
    received = False
    status = 0
    body = b""

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
            if not message.get("more_body"):
                answered.set()

    await app(scope, receive, send)
    return status, json.loads(body) if body else None


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="authflow-request-cost-")
    pg_name = f"request_cost_{uuid.uuid4().hex[:8]}" if args.db == "postgresql" else None
    if pg_name is None:
        database_url = f"sqlite+aiosqlite:///{tmp}/authflow.db"
    else:
        await _pg(f'CREATE DATABASE "{pg_name}"')
        database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    try:
        await _measure(args, tmp, database_url)
    finally:
        if pg_name is not None:
            await _pg(f'DROP DATABASE IF EXISTS "{pg_name}"')
        shutil.rmtree(tmp, ignore_errors=True)


async def _measure(args: argparse.Namespace, tmp: str, database_url: str) -> None:
    from api.app import create_app
    from authflow.db import Database
    from authflow.migrate import migrate_and_seed
    from authflow.settings import Settings
    from devtools.bench.seed import enrol_directly, seed_catalogue, seed_users, token_service

    secret = secrets.token_urlsafe(48)
    settings = Settings(
        environment="test",
        database_url=database_url,
        jwt_secret=secret,
        temporal_address="127.0.0.1:1",  # never called by these routes
        client_rate_limit_per_minute=10**7,
        file_storage_url=f"file://{tmp}/files",
    )
    await migrate_and_seed(settings)
    db = Database(settings.database_url)
    tokens = token_service(secret)
    [owner] = await seed_users(db, "author", 1, tokens)
    course_ids = await seed_catalogue(db, owner.user_id, args.courses)
    learners = await seed_users(db, "learner", args.learners, tokens)
    rng = random.Random(3)  # noqa: S311 - which course each learner takes
    course_of = {learner.token: rng.choice(course_ids) for learner in learners}
    for course in set(course_of.values()):
        mine = [x.user_id for x in learners if course_of[x.token] == course]
        await enrol_directly(db, course, mine)
    await db.dispose()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        lessons_of: dict[str, list[str]] = {}
        for token, course in course_of.items():
            status, outline = await call(app, "GET", f"{API}/courses/{course}", token)
            if status != 200:
                raise SystemExit(f"outline answered {status}: {outline}")
            lessons_of[token] = [x["id"] for m in outline["modules"] for x in m["lessons"]]
        _, first = await call(app, "GET", f"{API}/courses", None, "limit=20&sort=popular")
        request = _requests(list(course_of), course_of, lessons_of, first["next_cursor"])
        routes = args.routes.split(",")
        for route in routes:  # warm-up: lazy set-up is paid once, not measured
            for i in range(20):
                await _checked(app, route, request(route, i))
        cpu: dict[str, list[float]] = {route: [] for route in routes}
        for _ in range(args.rounds):
            for route in routes:
                started = time.process_time()
                for i in range(args.n):
                    await _checked(app, route, request(route, i))
                cpu[route].append((time.process_time() - started) / args.n * 1000)
    for route in routes:
        runs = ", ".join(f"{v:.2f}" for v in cpu[route])
        print(f"{route:18s} {statistics.median(cpu[route]):6.2f} ms CPU/request ({runs})")


def _requests(
    tokens: list[str],
    course_of: dict[str, str],
    lessons_of: dict[str, list[str]],
    popular_cursor: str | None,
) -> Callable[[str, int], Request]:
    completed = dict.fromkeys(tokens, 0)

    def request(route: str, i: int) -> Request:
        token = tokens[i % len(tokens)]
        if route == "catalogue":
            return "GET", f"{API}/courses", token, f"limit=20&sort={('newest', 'title')[i % 2]}"
        if route == "catalogue_popular":
            return "GET", f"{API}/courses", token, "limit=20&sort=popular"
        if route == "catalogue_next":
            if popular_cursor is None:
                raise SystemExit("catalogue_next needs more than 20 courses (--courses)")
            return "GET", f"{API}/courses", token, f"limit=20&sort=popular&cursor={popular_cursor}"
        if route == "outline":
            return "GET", f"{API}/courses/{course_of[token]}", token, ""
        lessons = lessons_of[token]
        lesson = lessons[completed[token] % len(lessons)]
        if route == "complete":
            completed[token] += 1
            return "POST", f"{API}/lessons/{lesson}/complete", token, ""
        if route == "lesson":
            return "GET", f"{API}/lessons/{lesson}", token, ""
        raise SystemExit(f"unknown route {route!r}; choose from {', '.join(ROUTES)}")

    return request


async def _checked(app: FastAPI, route: str, request: Request) -> None:
    method, path, token, query = request
    status, document = await call(app, method, path, token, query)
    if not 200 <= status < 300:
        raise SystemExit(f"{route}: {status} {document}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools.request_cost", description=__doc__)
    parser.add_argument("--courses", type=int, default=50, help="published courses (50)")
    parser.add_argument("--learners", type=int, default=50, help="enrolled learners (50)")
    parser.add_argument("--n", type=int, default=300, help="requests per route and round (300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown (3)")
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    return parser


if __name__ == "__main__":
    os.environ.setdefault("ENVIRONMENT", "test")
    asyncio.run(main(_parser().parse_args()))
