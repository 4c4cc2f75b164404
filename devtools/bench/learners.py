"""Signed-in learners, run as their own process (``python -m devtools.bench.learners
CONFIG.json RESULT.json``), like the registration load (``devtools.bench.load``) and for
the same reason: the client's work stays off the bench's event loop and is measured
apart (``cpu_seconds``).

* ``learn``: each learner, until ``duration`` has passed, reads one to three pages of the
  catalogue (``GET /courses``, a random sort), opens the outline of a course seen there
  (``GET /courses/{id}``), enrols (``POST .../enroll``), then opens and completes lessons
  in order (``GET /lessons/{id}``, ``POST /lessons/{id}/complete``) for a while before
  browsing again.
* ``quiz``: every learner starts the quiz at a moment of ``[start_at, start_at +
  start_spread]`` (``POST /quizzes/{id}/attempts``; all at once with a spread of 0),
  saves a few more answers every ``save_interval`` seconds (``PUT /attempts/{id}/answers``);
  learners of even index submit (``POST /attempts/{id}/submit``) between half and four
  fifths of the time limit, the others keep saving until the deadline and let it close
  the attempt.  Every answer a ``200`` acknowledged is kept, to check it was graded.

A learner's requests are paced on a grid of ``think`` seconds from its own start (a
person reading): a slow answer delays that learner's next request, never the others'.
Latency is from sending a request to its whole answer, each on a connection of its own.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from devtools.bench.load import HttpClient

API = "/api/v1"
Mode = Literal["learn", "quiz"]
# Learners who do not submit go on saving this long past the deadline, to see the
# refusals.
DEADLINE_SLACK = 1.0


@dataclass(frozen=True)
class LearnersConfig:
    base_url: str
    mode: Mode
    start_at: float  # wall clock of the first request
    tokens: list[str]
    duration: float = 30.0  # learn: how long learners keep going
    think: float = 1.0  # seconds between one learner's requests
    quiz_id: str = ""
    question_ids: list[str] = field(default_factory=list)
    time_limit: float = 60.0  # quiz: the attempt's time limit (seconds)
    save_interval: float = 5.0
    start_spread: float = 0.0  # quiz: starts arrive uniformly over this many seconds
    seed: int = 7
    timeout: float = 60.0


@dataclass(frozen=True)
class RouteRecord:
    route: str  # catalogue, outline, enrol, lesson, complete; start, save, submit
    learner: int
    sent_at: float
    answered_at: float | None
    status: int | None  # None: no HTTP answer (see error)
    error: str | None = None  # the error code of a non-2xx answer, or the exception


@dataclass
class QuizLearner:
    """What one quiz learner saw: the attempt, every answer a 200 acknowledged, and
    (for a submitter) the grade the submit answered with."""

    index: int
    attempt_id: str | None = None
    deadline: str | None = None
    acknowledged: dict[str, Any] = field(default_factory=dict)
    submitted: bool = False
    submit_score: int | None = None


class Learners:
    def __init__(self, config: LearnersConfig) -> None:
        self.config = config
        self.client = HttpClient(config.base_url, config.timeout)
        self.records: list[RouteRecord] = []

    async def call(
        self, learner: int, route: str, method: str, path: str, body: Any = None
    ) -> tuple[int | None, Any]:
        """One timed request; its status and parsed JSON body (None if it has none)."""
        sent_at = time.time()
        try:
            answer = await self.client.request(
                method, path, body, token=self.config.tokens[learner]
            )
        except (OSError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            self.records.append(RouteRecord(route, learner, sent_at, None, None, error))
            return None, None
        answered_at = time.time()
        try:
            document = json.loads(answer.body) if answer.body else None
        except ValueError:
            document = None
        code = None
        if not 200 <= answer.status < 300:
            code = _error_code(document) or f"http {answer.status}"
        self.records.append(RouteRecord(route, learner, sent_at, answered_at, answer.status, code))
        return answer.status, document


def _error_code(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        code = document["error"].get("code")
        return str(code) if code is not None else None
    return None


class _Pace:
    """One learner's clock: the next request is due ``think`` seconds after the last
    one was due (at once if that moment has passed)."""

    def __init__(self, start: float, think: float, rng: random.Random) -> None:
        self.due, self.think, self.rng = start, think, rng

    async def next(self) -> None:
        self.due += self.think * self.rng.uniform(0.5, 1.5)
        delay = self.due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


# ------------------------------------------------------------------------------ learn


async def learn(config: LearnersConfig) -> Learners:
    runner = Learners(config)
    end = config.start_at + config.duration
    await asyncio.gather(*(_learner(runner, i, end) for i in range(len(config.tokens))))
    return runner


async def _learner(runner: Learners, index: int, end: float) -> None:
    config = runner.config
    rng = random.Random(config.seed * 100_003 + index)  # noqa: S311 - think times
    # Arrivals spread over the first think period, as people do.
    pace = _Pace(config.start_at + rng.uniform(0, config.think), config.think, rng)
    await _sleep_until(pace.due)
    while time.time() < end:
        course_id = await _browse(runner, index, rng, pace)
        if course_id is None:
            await pace.next()
            continue
        if time.time() >= end:
            return
        await pace.next()
        status, outline = await runner.call(index, "outline", "GET", f"{API}/courses/{course_id}")
        if status != 200 or not isinstance(outline, dict):
            await pace.next()
            continue
        lessons = [
            lesson["id"] for module in outline.get("modules", []) for lesson in module["lessons"]
        ]
        await pace.next()
        status, _ = await runner.call(index, "enrol", "POST", f"{API}/courses/{course_id}/enroll")
        if status not in (200, 201):
            await pace.next()
            continue
        for lesson_id in lessons[: rng.randint(3, 12)]:
            if time.time() >= end:
                return
            await pace.next()
            await runner.call(index, "lesson", "GET", f"{API}/lessons/{lesson_id}")
            await pace.next()
            await runner.call(index, "complete", "POST", f"{API}/lessons/{lesson_id}/complete")
        await pace.next()


async def _browse(runner: Learners, index: int, rng: random.Random, pace: _Pace) -> str | None:
    """One to three catalogue pages; a course seen on them (None if none was)."""
    sort = rng.choice(("newest", "title", "popular"))
    path = f"{API}/courses?limit=20&sort={sort}"
    seen: list[str] = []
    for page in range(rng.randint(1, 3)):
        if page:
            await pace.next()
        status, document = await runner.call(index, "catalogue", "GET", path)
        if status != 200 or not isinstance(document, dict):
            return None
        seen.extend(item["id"] for item in document.get("items", []))
        cursor = document.get("next_cursor")
        if not cursor:
            break
        path = f"{API}/courses?limit=20&sort={sort}&cursor={cursor}"
    return rng.choice(seen) if seen else None


# ------------------------------------------------------------------------------- quiz


async def quiz(config: LearnersConfig) -> tuple[Learners, list[QuizLearner]]:
    runner = Learners(config)
    learners = [QuizLearner(i) for i in range(len(config.tokens))]
    await _sleep_until(config.start_at)
    await asyncio.gather(*(_quiz_taker(runner, learner) for learner in learners))
    return runner, learners


def answer_for(question_id: str, round_: int) -> Any:
    """A valid answer to the seeded question ``question_id`` (kind = its number mod 5,
    ``devtools.bench.seed.quiz_definition``); it changes with ``round_``, so a lost
    save shows as an old value."""
    kind = int(question_id.lstrip("q")) % 5
    if kind == 0:
        return "abc"[round_ % 3]
    if kind == 1:
        return ["a", "b"] if round_ % 2 else ["a"]
    if kind == 2:
        return round_ % 2 == 0
    if kind == 3:
        return f"custard {round_}"
    return 40 + round_


def save_batch(questions: list[str], round_: int) -> list[str]:
    """The questions a learner answers in save ``round_``: the first two, then three at a
    time moving by two, so each save also changes the previous one's last answer (and
    after the last question it starts over, changing answers already saved)."""
    if round_ == 0:
        return questions[:2]
    return list(dict.fromkeys(questions[(2 * round_ - 1 + j) % len(questions)] for j in range(3)))


def refused_at_deadline(record: RouteRecord, deadline: float) -> bool:
    """A save refused with 409 ``attempt_closed`` is fair if its answer came at or after
    the deadline: the server decided between the request's sending and its answer, so
    it may have decided at the deadline (under load a save sent a second before it can
    arrive after it).  A refusal answered before the deadline closed the attempt early:
    an error."""
    return (
        record.status == 409
        and record.error == "attempt_closed"
        and record.answered_at is not None
        and record.answered_at >= deadline
    )


async def _quiz_taker(runner: Learners, learner: QuizLearner) -> None:
    config = runner.config
    rng = random.Random(config.seed * 100_003 + learner.index)  # noqa: S311 - timing
    if config.start_spread > 0:
        # "In the same second": arrivals uniform over it, as people press Start.
        await _sleep_until(config.start_at + rng.uniform(0, config.start_spread))
    status, attempt = await runner.call(
        learner.index, "start", "POST", f"{API}/quizzes/{config.quiz_id}/attempts"
    )
    if status not in (200, 201) or not isinstance(attempt, dict):
        return
    learner.attempt_id, learner.deadline = str(attempt["id"]), attempt.get("deadline")
    started = time.time()
    # The server's deadline (its clock is this machine's): a save refused after it is fair.
    deadline = datetime.fromisoformat(str(attempt["deadline"])).timestamp()
    submit_at = (
        started + config.time_limit * rng.uniform(0.5, 0.8) if learner.index % 2 == 0 else None
    )
    questions = list(config.question_ids)
    rng.shuffle(questions)
    due, round_ = started + rng.uniform(0, config.save_interval), 0
    while True:
        stop = submit_at if submit_at is not None else deadline + DEADLINE_SLACK
        if due >= stop:
            break
        await _sleep_until(due)
        batch = {q: answer_for(q, round_) for q in save_batch(questions, round_)}
        status, _ = await runner.call(
            learner.index, "save", "PUT", f"{API}/attempts/{learner.attempt_id}/answers",
            {"answers": batch},
        )  # fmt: skip
        if status == 200:
            learner.acknowledged.update(batch)
        elif refused_at_deadline(runner.records[-1], deadline):
            # Refused at the deadline, as it should be: not an error; the learner stops.
            runner.records[-1] = RouteRecord(**{**asdict(runner.records[-1]), "route": "late_save"})
            return
        round_ += 1
        due += config.save_interval
    if submit_at is None:
        return
    await _sleep_until(submit_at)
    status, result = await runner.call(
        learner.index, "submit", "POST", f"{API}/attempts/{learner.attempt_id}/submit"
    )
    if status == 200 and isinstance(result, dict):
        learner.submitted, learner.submit_score = True, result.get("score")


# ---------------------------------------------------------------------------- warm-up


async def warm_up(config: LearnersConfig) -> list[RouteRecord]:
    """Every measured route once, by the first learner of ``config``, in the bench's own
    process before ``t0``: the stack's first request on a route pays for lazy set-up
    (imports, compiled queries, the first Temporal call) that no learner would see twice,
    and a failure here means the run cannot measure anything."""
    runner = Learners(config)
    if config.mode == "learn":
        _, page = await runner.call(0, "catalogue", "GET", f"{API}/courses?limit=20")
        course_id = page["items"][0]["id"] if isinstance(page, dict) and page["items"] else ""
        _, outline = await runner.call(0, "outline", "GET", f"{API}/courses/{course_id}")
        await runner.call(0, "enrol", "POST", f"{API}/courses/{course_id}/enroll")
        modules = outline.get("modules", []) if isinstance(outline, dict) else []
        lesson_id = modules[0]["lessons"][0]["id"] if modules else ""
        await runner.call(0, "lesson", "GET", f"{API}/lessons/{lesson_id}")
        await runner.call(0, "complete", "POST", f"{API}/lessons/{lesson_id}/complete")
        return runner.records
    _, attempt = await runner.call(0, "start", "POST", f"{API}/quizzes/{config.quiz_id}/attempts")
    attempt_id = attempt["id"] if isinstance(attempt, dict) else ""
    question = config.question_ids[0]
    await runner.call(
        0, "save", "PUT", f"{API}/attempts/{attempt_id}/answers",
        {"answers": {question: answer_for(question, 0)}},
    )  # fmt: skip
    await runner.call(0, "submit", "POST", f"{API}/attempts/{attempt_id}/submit")
    return runner.records


# ------------------------------------------------------------------------------ process


async def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def run(config: LearnersConfig) -> dict[str, Any]:
    if config.mode == "learn":
        runner = await learn(config)
        learners: list[QuizLearner] = []
    else:
        runner, learners = await quiz(config)
    return {
        "requests": [asdict(r) for r in runner.records],
        "learners": [asdict(learner) for learner in learners],
        "cpu_seconds": time.process_time(),
    }


class LearnersProcess:
    """The learners in their own process: ``start``, then ``finish``."""

    def __init__(self, config: LearnersConfig, workdir: Path) -> None:
        self.config = config
        self._config_path = workdir / "learners.config.json"
        self._result_path = workdir / "learners.result.json"
        self._process: asyncio.subprocess.Process | None = None
        self.cpu_seconds = 0.0

    async def start(self) -> None:
        self._config_path.write_text(json.dumps(asdict(self.config)))
        self._result_path.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devtools.bench.learners",
            str(self._config_path),
            str(self._result_path),
        )

    async def finish(self) -> tuple[list[RouteRecord], list[QuizLearner]]:
        assert self._process is not None, "start() first"
        code = await self._process.wait()
        if code != 0 or not self._result_path.exists():
            raise RuntimeError(f"the learners' process failed (exit code {code})")
        document = json.loads(self._result_path.read_text())
        self.cpu_seconds = float(document.get("cpu_seconds", 0.0))
        records = [RouteRecord(**item) for item in document["requests"]]
        learners = [QuizLearner(**item) for item in document["learners"]]
        return records, learners

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m devtools.bench.learners CONFIG.json RESULT.json", file=sys.stderr)
        return 2
    config = LearnersConfig(**json.loads(Path(argv[0]).read_text()))
    document = asyncio.run(run(config))
    result = Path(argv[1])
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
