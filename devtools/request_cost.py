"""CPU per request of the learner's routes, in process: ``python -m devtools.request_cost``.

The learn benchmark reports the API's CPU per request over a whole run (HTTP server,
connections and all); this isolates the application's share of one request, to compare
two commits quickly (run it in a worktree of each, interleaved: docs/benchmarks.md,
"Learning").  It seeds a fresh SQLite database (or a new PostgreSQL database with
``--db postgresql``) with the bench's catalogue, enrols learners directly, then calls
the ASGI app directly (no server, no client), one request at a time, and prints the
process CPU (every thread) per request of each route.  Temporal is not needed: no route
measured here calls it (the quiz routes use an untimed quiz, whose attempts have no
workflow).

``quiz_start`` starts a first attempt (a new learner each time: ``--n`` times
``--rounds`` learners are enrolled for it); ``quiz_save`` saves three answers of an open
attempt of a 20-question quiz, as ``authflow bench quiz`` does.
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
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from devtools.bench.learners import answer_for, save_batch

API = "/api/v1"
ROUTES = ("catalogue", "catalogue_popular", "catalogue_next", "outline", "lesson", "complete")
QUIZ_ROUTES = ("quiz_start", "quiz_save")
QUIZ_QUESTIONS = 20
QUESTION_IDS = [f"q{i}" for i in range(QUIZ_QUESTIONS)]
# method, path, bearer token, query string, JSON body
Request = tuple[str, str, str | None, str, Any]


async def call(
    app: FastAPI,
    method: str,
    path: str,
    token: str | None = None,
    query: str = "",
    document: Any = None,
) -> tuple[int, Any]:
    """One request through the ASGI app (with ``document`` as its JSON body); its status
    and parsed JSON body."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"request-cost")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    sent = b"" if document is None else json.dumps(document).encode()
    if sent:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(sent))]
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
            return {"type": "http.request", "body": sent, "more_body": False}
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
    from devtools.bench.seed import (
        enrol_directly,
        quiz_definition,
        seed_catalogue,
        seed_quiz_course,
        seed_users,
        token_service,
    )

    routes = args.routes.split(",")
    if unknown := set(routes) - set(ROUTES) - set(QUIZ_ROUTES):
        raise SystemExit(f"unknown routes {sorted(unknown)}; choose from {ROUTES + QUIZ_ROUTES}")
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
    # The quiz routes: an untimed quiz (no workflow), a learner per start to come.
    quiz = await seed_quiz_course(db, owner.user_id, quiz_definition(QUIZ_QUESTIONS, None), "rc")
    starters = 20 + args.n * args.rounds if "quiz_start" in routes else 0
    quizzers = await seed_users(db, "quizzer", starters + args.learners, tokens)
    await enrol_directly(db, quiz.course_id, [x.user_id for x in quizzers])
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
        attempts: dict[str, str] = {}  # a saving learner's token -> their open attempt
        for saver in quizzers[starters:]:
            status, attempt = await call(
                app, "POST", f"{API}/quizzes/{quiz.quiz_id}/attempts", saver.token
            )
            if status not in (200, 201):
                raise SystemExit(f"quiz start answered {status}: {attempt}")
            attempts[saver.token] = attempt["id"]
        request = _requests(
            list(course_of),
            course_of,
            lessons_of,
            first["next_cursor"],
            Quizzing(quiz.quiz_id, [x.token for x in quizzers[:starters]], attempts),
        )
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


@dataclass
class Quizzing:
    quiz_id: str
    starters: list[str]  # tokens of learners who start a first attempt, one each
    attempts: dict[str, str]  # token -> open attempt, of the learners who save
    started: int = 0
    saved: int = 0


def _requests(
    tokens: list[str],
    course_of: dict[str, str],
    lessons_of: dict[str, list[str]],
    popular_cursor: str | None,
    quizzing: Quizzing,
) -> Callable[[str, int], Request]:
    completed = dict.fromkeys(tokens, 0)
    savers = list(quizzing.attempts)

    def request(route: str, i: int) -> Request:
        token = tokens[i % len(tokens)]
        if route == "catalogue":
            sort = ("newest", "title")[i % 2]
            return "GET", f"{API}/courses", token, f"limit=20&sort={sort}", None
        if route == "catalogue_popular":
            return "GET", f"{API}/courses", token, "limit=20&sort=popular", None
        if route == "catalogue_next":
            if popular_cursor is None:
                raise SystemExit("catalogue_next needs more than 20 courses (--courses)")
            query = f"limit=20&sort=popular&cursor={popular_cursor}"
            return "GET", f"{API}/courses", token, query, None
        if route == "outline":
            return "GET", f"{API}/courses/{course_of[token]}", token, "", None
        if route == "quiz_start":
            starter = quizzing.starters[quizzing.started]
            quizzing.started += 1
            return "POST", f"{API}/quizzes/{quizzing.quiz_id}/attempts", starter, "", None
        if route == "quiz_save":
            saver = savers[quizzing.saved % len(savers)]
            batch = save_batch(QUESTION_IDS, quizzing.saved // len(savers))
            quizzing.saved += 1
            path = f"{API}/attempts/{quizzing.attempts[saver]}/answers"
            round_ = quizzing.saved
            return "PUT", path, saver, "", {"answers": {q: answer_for(q, round_) for q in batch}}
        lessons = lessons_of[token]
        lesson = lessons[completed[token] % len(lessons)]
        if route == "complete":
            completed[token] += 1
            return "POST", f"{API}/lessons/{lesson}/complete", token, "", None
        if route == "lesson":
            return "GET", f"{API}/lessons/{lesson}", token, "", None
        raise SystemExit(f"unknown route {route!r}")

    return request


async def _checked(app: FastAPI, route: str, request: Request) -> None:
    method, path, token, query, document = request
    status, answer = await call(app, method, path, token, query, document)
    if not 200 <= status < 300:
        raise SystemExit(f"{route}: {status} {answer}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools.request_cost", description=__doc__)
    parser.add_argument("--courses", type=int, default=50, help="published courses (50)")
    parser.add_argument("--learners", type=int, default=50, help="enrolled learners (50)")
    parser.add_argument("--n", type=int, default=300, help="requests per route and round (300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown (3)")
    parser.add_argument(
        "--routes", default=",".join(ROUTES), help=f"comma-separated, of {ROUTES + QUIZ_ROUTES}"
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    return parser


if __name__ == "__main__":
    os.environ.setdefault("ENVIRONMENT", "test")
    asyncio.run(main(_parser().parse_args()))
