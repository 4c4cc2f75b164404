"""The learning scenarios, ``learn`` and ``quiz``: what one run does, and what it measures.

One run = a fresh stack (always the bench's own: it seeds the stack's database and signs
its learners' tokens with the stack's ``JWT_SECRET``), a fresh SMTP sink, the seed
(``devtools.bench.seed``), then from ``t0`` the learners in their own process
(``devtools.bench.learners``).

* ``learn``: per route (catalogue, outline, enrol, lesson, complete) the count, the
  errors (any answer but 2xx, or none) and p50 / p99 / max latency.
* ``quiz``: the same for start, save and submit; then, read from the database (never
  through the API, whose reads close an overdue attempt themselves and would hide a
  late workflow): how late each deadline close was (``submitted_at - deadline``), the
  attempts left open, the answers a ``200`` acknowledged that the graded attempt lacks
  (*lost*), and the attempts graded twice (*double*: a learner's submit answered 200 but
  the record says the deadline closed it or holds another score, or a "time is up"
  result email went to a learner who had submitted, or two went to one learner).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from authflow.db import Database
from authflow.quizzes.models import AttemptState, QuizAttempt, QuizAttemptResult, SubmittedBy
from devtools.bench import stats
from devtools.bench.learners import (
    LearnersConfig,
    LearnersProcess,
    QuizLearner,
    RouteRecord,
    warm_up,
)
from devtools.bench.monitor import MachineMonitor, ProcessMonitor
from devtools.bench.scenarios import BenchOptions, RunResult, Variant
from devtools.bench.seed import (
    enrol_directly,
    quiz_definition,
    seed_catalogue,
    seed_quiz_course,
    seed_users,
    token_service,
)
from devtools.bench.sink import BenchSink, subject_of
from devtools.bench.stack import OwnStack
from devtools.bench.targets import Metrics

LEARN_ROUTES = ("catalogue", "outline", "enrol", "lesson", "complete")
QUIZ_ROUTES = ("start", "save", "submit")
QUIZ_QUESTIONS = 20
START_DELAY = 2.0  # seconds between launching the learners' process and t0
CLOSE_WAIT = 30.0  # after the last deadline, how long to wait for every close
RESULT_SUBJECT = "time is up"  # authflow/quizzes/emails.py: QUIZ_RESULT's subject
EMAIL_GRACE = 3.0  # after the expected result emails, wait this long for duplicates
DEFAULT_LEARNERS = {"learn": 200, "quiz": 300}


def learners_for(options: BenchOptions, load: str) -> int:
    return options.learners if options.learners is not None else DEFAULT_LEARNERS[load]


async def run_once(
    options: BenchOptions, variant: Variant, limits: dict[str, float], log_file: Path
) -> RunResult:
    secret = secrets.token_urlsafe(48)
    sink = BenchSink(options.sink_host, 0)
    await sink.start()
    stack = OwnStack(
        workers=variant.workers,
        smtp_host=sink.host,
        smtp_port=sink.port,
        log_file=log_file,
        keep=options.keep,
        extra_env={"JWT_SECRET": secret},
    )
    try:
        await stack.start()
        db = Database(stack.database_url)
        try:
            if variant.load == "learn":
                return await _learn(options, stack, db, secret)
            return await _quiz(options, stack, db, sink, secret)
        finally:
            await db.dispose()
    finally:
        await stack.stop()
        await sink.stop()


@dataclass
class _Measured:
    records: list[RouteRecord]
    learners: list[QuizLearner]
    t0: float
    metrics: Metrics


async def _drive(stack: OwnStack, config: LearnersConfig) -> _Measured:
    """Run the learners' process while the stack's and the machine's use is measured."""
    with tempfile.TemporaryDirectory(prefix="authflow-bench-learners-") as tmp:
        process = LearnersProcess(config, Path(tmp))
        monitor = ProcessMonitor(stack.root_pid) if stack.root_pid is not None else None
        if monitor is not None:
            monitor.start()
        machine = MachineMonitor()
        machine.start()
        try:
            await process.start()
            records, learners = await process.finish()
        finally:
            process.kill()
        usage = await monitor.stop() if monitor is not None else None
        interference = await machine.stop()
    metrics: Metrics = {"load_cpu_s": process.cpu_seconds}
    stack_cpu = sum(usage.cpu_seconds.values()) if usage is not None else 0.0
    metrics["stack_cpu_s"] = stack_cpu
    metrics["bench_cpu_s"] = interference.bench_cpu_seconds
    metrics["other_cpu_s"] = (
        interference.busy_cpu_seconds - interference.bench_cpu_seconds - stack_cpu
    )
    metrics["steal_cpu_s"] = interference.steal_cpu_seconds
    metrics["load_avg_1m"] = interference.load_average
    if usage is not None:
        for role in ("api", "worker", "temporal"):
            metrics[f"rss_{role}_mb"] = usage.peak_rss_mb.get(role)
            metrics[f"cpu_{role}_s"] = usage.cpu_seconds.get(role, 0.0)
        # CPU is what a loaded machine distorts least: the API's cost of one request.
        metrics["cpu_api_per_request_ms"] = (
            usage.cpu_seconds.get("api", 0.0) / len(records) * 1000 if records else None
        )
    return _Measured(records, learners, config.start_at, metrics)


# ------------------------------------------------------------------------------ learn


async def _learn(options: BenchOptions, stack: OwnStack, db: Database, secret: str) -> RunResult:
    tokens = token_service(secret)
    run_id = uuid.uuid4().hex[:8]
    seeding = time.monotonic()
    [owner] = await seed_users(db, f"bench-{run_id}-author", 1, tokens)
    await seed_catalogue(db, owner.user_id, options.courses)
    learners = await seed_users(
        db, f"bench-{run_id}-learner", learners_for(options, "learn"), tokens
    )
    seed_s = time.monotonic() - seeding
    [warm] = await seed_users(db, f"bench-{run_id}-warm", 1, tokens)
    await _warm_up(LearnersConfig(stack.base_url, "learn", time.time(), [warm.token]))
    config = LearnersConfig(
        stack.base_url,
        "learn",
        time.time() + START_DELAY,
        [learner.token for learner in learners],
        duration=options.duration,
        think=options.think,
    )
    measured = await _drive(stack, config)
    metrics = {
        "courses": float(options.courses),
        "learners": float(len(learners)),
        "seed_s": seed_s,
        **route_metrics(measured.records, LEARN_ROUTES),
        **measured.metrics,
    }
    return RunResult(
        metrics, route_series(measured.t0, measured.records), error_events(measured.records)
    )


# ------------------------------------------------------------------------------- quiz


async def _quiz(
    options: BenchOptions, stack: OwnStack, db: Database, sink: BenchSink, secret: str
) -> RunResult:
    tokens = token_service(secret)
    run_id = uuid.uuid4().hex[:8]
    seeding = time.monotonic()
    [owner] = await seed_users(db, f"bench-{run_id}-author", 1, tokens)
    definition = quiz_definition(QUIZ_QUESTIONS, options.time_limit)
    seeded = await seed_quiz_course(db, owner.user_id, definition, run_id)
    learners = await seed_users(
        db, f"bench-{run_id}-learner", learners_for(options, "quiz"), tokens
    )
    await enrol_directly(db, seeded.course_id, [learner.user_id for learner in learners])
    seed_s = time.monotonic() - seeding
    # The warm-up takes a quiz of its own: the measured quiz's attempts are the learners'.
    warm_quiz = await seed_quiz_course(db, owner.user_id, definition, f"{run_id}-warm")
    [warm] = await seed_users(db, f"bench-{run_id}-warm", 1, tokens)
    await enrol_directly(db, warm_quiz.course_id, [warm.user_id])
    await _warm_up(
        LearnersConfig(
            stack.base_url,
            "quiz",
            time.time(),
            [warm.token],
            quiz_id=warm_quiz.quiz_id,
            question_ids=[str(q.id) for q in definition.questions],
        )
    )
    config = LearnersConfig(
        stack.base_url,
        "quiz",
        time.time() + START_DELAY,
        [learner.token for learner in learners],
        quiz_id=seeded.quiz_id,
        question_ids=[str(q.id) for q in definition.questions],
        time_limit=float(options.time_limit),
        save_interval=options.save_interval,
        start_spread=options.start_spread,
    )
    measured = await _drive(stack, config)
    attempts = await wait_for_closes(db, seeded.quiz_id, options.time_limit)
    graded_rows = await result_rows(db, seeded.quiz_id)
    by_deadline = {
        learners[learner.index].email
        for learner in measured.learners
        if learner.attempt_id in attempts
        and attempts[learner.attempt_id]["submitted_by"] == SubmittedBy.DEADLINE
    }
    await wait_for_result_emails(sink, by_deadline, time.time() + options.drain_timeout)
    emails = Counter(
        r.recipient
        for r in sink.delivered("notification")
        if RESULT_SUBJECT in subject_of(r.message).lower()
    )
    emails_by_learner = {
        i: emails.get(learner.email.lower(), 0) for i, learner in enumerate(learners)
    }
    metrics = {
        "learners": float(len(learners)),
        "questions": float(QUIZ_QUESTIONS),
        "seed_s": seed_s,
        "time_limit_s": float(options.time_limit),
        **route_metrics(measured.records, QUIZ_ROUTES),
        **quiz_metrics(measured.learners, attempts, graded_rows, emails_by_learner, QUIZ_QUESTIONS),
        **measured.metrics,
    }
    starts = [r.sent_at for r in measured.records if r.route == "start"]
    metrics["start_spread_s"] = max(starts) - min(starts) if starts else None
    events = {
        **error_events(measured.records),
        **quiz_events(measured.learners, attempts, emails_by_learner),
    }
    series = route_series(measured.t0, measured.records)
    series["deadline_late_s"] = [
        late for late in (_lateness(a) for a in attempts.values()) if late is not None
    ]
    return RunResult(metrics, series, events)


async def _warm_up(config: LearnersConfig) -> None:
    for record in await warm_up(config):
        if not _ok(record):
            raise RuntimeError(
                f"warm-up {record.route} answered {record.status}: {record.error}; "
                f"the stack's log has the details"
            )


async def wait_for_closes(
    db: Database, quiz_id: str, time_limit: float
) -> dict[str, dict[str, Any]]:
    """Every attempt of the quiz, once none is open (or ``CLOSE_WAIT`` after the latest
    deadline), by id."""
    while True:
        attempts = await attempt_rows(db, quiz_id)
        deadlines = [a["deadline"].timestamp() for a in attempts.values() if a["deadline"]]
        give_up = max(deadlines, default=time.time()) + CLOSE_WAIT
        if all(a["state"] != AttemptState.OPEN for a in attempts.values()):
            return attempts
        if time.time() >= give_up:
            return attempts
        await asyncio.sleep(0.5)


async def attempt_rows(db: Database, quiz_id: str) -> dict[str, dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            select(
                QuizAttempt.id,
                QuizAttempt.user_id,
                QuizAttempt.state,
                QuizAttempt.deadline,
                QuizAttempt.submitted_at,
                QuizAttempt.submitted_by,
                QuizAttempt.answers,
                QuizAttempt.score,
            ).where(QuizAttempt.quiz_id == quiz_id)
        )
        return {row.id: dict(row._mapping) for row in rows}


async def result_rows(db: Database, quiz_id: str) -> dict[str, int]:
    """Graded question rows per attempt."""
    async with db.session() as session:
        rows = await session.execute(
            select(QuizAttemptResult.attempt_id, func.count())
            .where(QuizAttemptResult.quiz_id == quiz_id)
            .group_by(QuizAttemptResult.attempt_id)
        )
        return {str(attempt_id): int(count) for attempt_id, count in rows.tuples()}


async def wait_for_result_emails(sink: BenchSink, expected: set[str], deadline: float) -> None:
    """Until every learner whose attempt the deadline closed has a result email, then a
    few seconds more for duplicates."""
    wanted = {address.lower() for address in expected}
    while time.time() < deadline:
        got = {
            r.recipient
            for r in sink.delivered("notification")
            if RESULT_SUBJECT in subject_of(r.message).lower()
        }
        if wanted <= got:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(EMAIL_GRACE)


# ---------------------------------------------------------------------------- figures


def _ok(record: RouteRecord) -> bool:
    return record.status is not None and 200 <= record.status < 300


def route_metrics(records: Sequence[RouteRecord], routes: Sequence[str]) -> Metrics:
    """Per route: requests, errors (an answer but 2xx, or none) and latency of the 2xx
    answers (p50, p99, max, in ms); ``requests`` and ``errors`` over every route.

    ``late_save`` (a quiz save refused at its deadline, as it should be) is counted on
    its own, neither a save nor an error."""
    m: Metrics = {}
    measured = [r for r in records if r.route != "late_save"]
    for route in routes:
        mine = [r for r in measured if r.route == route]
        latencies = [
            (r.answered_at - r.sent_at) * 1000 for r in mine if _ok(r) and r.answered_at is not None
        ]
        summary = stats.summarize(latencies)
        m[f"{route}_count"] = float(len(mine))
        m[f"{route}_errors"] = float(sum(1 for r in mine if not _ok(r)))
        m[f"{route}_p50_ms"] = summary.p50
        m[f"{route}_p99_ms"] = summary.p99
        m[f"{route}_max_ms"] = summary.max
    m["all_requests"] = float(len(measured))
    m["errors"] = float(sum(1 for r in measured if not _ok(r)))
    if "save" in routes:
        m["late_saves"] = float(sum(1 for r in records if r.route == "late_save"))
    return m


def _lateness(attempt: dict[str, Any]) -> float | None:
    if attempt["submitted_by"] != SubmittedBy.DEADLINE or attempt["submitted_at"] is None:
        return None
    closed: datetime = attempt["submitted_at"]
    deadline: datetime = attempt["deadline"]
    return (closed - deadline).total_seconds()


def lost_answers(learner: QuizLearner, attempt: dict[str, Any] | None) -> list[str]:
    """Questions whose acknowledged answer the graded attempt does not hold."""
    if attempt is None or attempt["state"] == AttemptState.OPEN:
        return []  # not graded: counted as unclosed instead
    graded = attempt["answers"] or {}
    return sorted(q for q, value in learner.acknowledged.items() if graded.get(q) != value)


def double_graded(learner: QuizLearner, attempt: dict[str, Any] | None, emails: int) -> bool:
    if emails > 1:
        return True
    if not learner.submitted:
        return False
    if emails > 0:  # the deadline's workflow graded an attempt its learner had submitted
        return True
    return attempt is None or (
        attempt["submitted_by"] != SubmittedBy.LEARNER or attempt["score"] != learner.submit_score
    )


def quiz_metrics(
    learners: Sequence[QuizLearner],
    attempts: dict[str, dict[str, Any]],
    graded_rows: dict[str, int],
    emails: dict[int, int],
    questions: int,
) -> Metrics:
    """``graded_rows``: graded question rows per attempt id; ``emails``: "time is up"
    result emails per learner index."""
    late = [x for x in (_lateness(a) for a in attempts.values()) if x is not None]
    summary = stats.summarize(late)
    closed = [a for a in attempts.values() if a["state"] != AttemptState.OPEN]
    m: Metrics = {
        "attempts": float(len(attempts)),
        "submitted_by_learner": float(
            sum(1 for a in attempts.values() if a["submitted_by"] == SubmittedBy.LEARNER)
        ),
        "deadline_closed": float(len(late)),
        "deadline_unclosed": float(len(attempts) - len(closed)),
        "deadline_late_p50_s": summary.p50,
        "deadline_late_p99_s": summary.p99,
        "deadline_late_max_s": summary.max,
        # Every closed attempt has one graded row per question; fewer: not (wholly) graded.
        "graded_incomplete": float(
            sum(1 for a in closed if graded_rows.get(str(a["id"]), 0) != questions)
        ),
        "answers_acknowledged": float(sum(len(learner.acknowledged) for learner in learners)),
        "lost_answers": float(
            sum(len(lost_answers(x, attempts.get(x.attempt_id or ""))) for x in learners)
        ),
        "double_grades": float(
            sum(
                double_graded(x, attempts.get(x.attempt_id or ""), emails.get(x.index, 0))
                for x in learners
            )
        ),
        "result_emails": float(sum(emails.values())),
    }
    return m


def quiz_events(
    learners: Sequence[QuizLearner], attempts: dict[str, dict[str, Any]], emails: dict[int, int]
) -> dict[str, Any]:
    """Who lost an answer, was graded twice, or whose attempt stayed open."""
    lost, double, unclosed = [], [], []
    for learner in learners:
        attempt = attempts.get(learner.attempt_id or "")
        if missing := lost_answers(learner, attempt):
            lost.append({"attempt_id": learner.attempt_id, "questions": missing})
        if double_graded(learner, attempt, emails.get(learner.index, 0)):
            double.append(
                {"attempt_id": learner.attempt_id, "result_emails": emails.get(learner.index, 0)}
            )
        if attempt is not None and attempt["state"] == AttemptState.OPEN:
            unclosed.append(learner.attempt_id)
    return {"lost_answers": lost, "double_grades": double, "unclosed": unclosed}


def error_events(records: Sequence[RouteRecord], limit: int = 200) -> dict[str, Any]:
    """The failed requests (route, learner, status, error code), at most ``limit``."""
    failed = [r for r in records if r.route != "late_save" and not _ok(r)]
    counts = Counter(f"{r.route} {r.status} {r.error}" for r in failed)
    return {
        "error_counts": dict(counts),
        "errors": [
            {"route": r.route, "learner": r.learner, "status": r.status, "error": r.error}
            for r in failed[:limit]
        ],
    }


def route_series(t0: float, records: Sequence[RouteRecord]) -> dict[str, list[float]]:
    """Per route, each 2xx answer as its send time since t0 followed by its latency (s)."""
    series: dict[str, list[float]] = {}
    for r in records:
        if _ok(r) and r.answered_at is not None:
            series.setdefault(f"route_{r.route}", []).extend(
                (r.sent_at - t0, r.answered_at - r.sent_at)
            )
    return series


def summary_line(load: str, m: Metrics) -> str:
    """One line per run on stdout."""
    routes = LEARN_ROUTES if load == "learn" else QUIZ_ROUTES
    p99 = ", ".join(f"{route} {_fmt(m.get(f'{route}_p99_ms'))}" for route in routes)
    line = f"{_fmt(m.get('all_requests'))} requests, {_fmt(m.get('errors'))} errors; p99 ms: {p99}"
    if load == "quiz":
        late = _fmt(m.get("deadline_late_max_s"), "{:.2f}")
        line += (
            f"; deadline closes {_fmt(m.get('deadline_closed'))} (latest +{late} s,"
            f" left open {_fmt(m.get('deadline_unclosed'))}),"
            f" lost answers {_fmt(m.get('lost_answers'))},"
            f" double grades {_fmt(m.get('double_grades'))}"
        )
    return line


def _fmt(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)
