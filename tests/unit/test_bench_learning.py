"""The learning scenarios' arithmetic and bookkeeping (``devtools.bench.learning``),
the seeded quiz and the answers the learners give it, and the bearer token the bench's
client sends; the runs themselves are in tests/e2e/test_bench_learning_smoke.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authflow.quizzes.grading import check_answers
from devtools.bench.learners import (
    QuizLearner,
    RouteRecord,
    answer_for,
    refused_at_deadline,
    save_batch,
)
from devtools.bench.learning import (
    double_graded,
    lost_answers,
    quiz_metrics,
    route_metrics,
    summary_line,
)
from devtools.bench.load import HttpClient
from devtools.bench.seed import quiz_definition
from devtools.bench.targets import learn_targets, quiz_targets

DEADLINE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def record(route: str, latency_s: float | None, status: int | None = 200) -> RouteRecord:
    answered = None if latency_s is None else 100.0 + latency_s
    return RouteRecord(route, 0, 100.0, answered, status, None if status == 200 else "x")


def attempt(
    attempt_id: str,
    *,
    by: str | None,
    late_s: float = 0.0,
    answers: dict[str, Any] | None = None,
    score: int | None = 3,
) -> dict[str, Any]:
    closed = by is not None
    return {
        "id": attempt_id,
        "state": "submitted" if closed else "open",
        "deadline": DEADLINE,
        "submitted_at": DEADLINE + timedelta(seconds=late_s) if closed else None,
        "submitted_by": by,
        "answers": answers or {},
        "score": score if closed else None,
    }


def test_route_metrics_count_errors_and_take_latency_from_2xx_answers_only() -> None:
    records = [
        *(record("lesson", ms / 1000) for ms in range(1, 101)),  # 1..100 ms
        record("lesson", 5.0, status=500),  # an error: not in the latency figures
        record("lesson", None, status=None),  # no answer
        record("complete", 0.010),
        record("late_save", 0.010, status=409),  # a fair refusal at the deadline
    ]
    m = route_metrics(records, ("lesson", "complete", "save"))
    assert m["lesson_count"] == 102
    assert m["lesson_errors"] == 2
    assert m["lesson_p50_ms"] == pytest.approx(50.5)
    assert m["lesson_p99_ms"] == pytest.approx(99.01)
    assert m["lesson_max_ms"] == pytest.approx(100)
    assert m["complete_errors"] == 0
    assert m["save_count"] == 0 and m["save_p99_ms"] is None
    assert m["all_requests"] == 103  # the late save is neither a request nor an error
    assert m["errors"] == 2
    assert m["late_saves"] == 1


def test_lost_answers_are_acknowledged_answers_the_graded_attempt_lacks() -> None:
    learner = QuizLearner(0, "a1", acknowledged={"q0": "a", "q1": ["a", "b"], "q2": True})
    graded = attempt("a1", by="deadline", answers={"q0": "a", "q1": ["a"], "q3": 41})
    assert lost_answers(learner, graded) == ["q1", "q2"]
    # Still open: not graded, so nothing is lost yet (it counts as left open).
    assert lost_answers(learner, attempt("a1", by=None)) == []
    complete = attempt("a1", by="learner", answers={"q0": "a", "q1": ["a", "b"], "q2": True})
    assert lost_answers(learner, complete) == []


def test_double_grades() -> None:
    submitter = QuizLearner(0, "a1", submitted=True, submit_score=3)
    assert not double_graded(submitter, attempt("a1", by="learner", score=3), emails=0)
    # The deadline closed an attempt whose submit had answered 200 ...
    assert double_graded(submitter, attempt("a1", by="deadline", score=3), emails=0)
    # ... or the record holds another grade than the submit answered ...
    assert double_graded(submitter, attempt("a1", by="learner", score=4), emails=0)
    # ... or the deadline's result email went to a learner who had submitted.
    assert double_graded(submitter, attempt("a1", by="learner", score=3), emails=1)
    waiter = QuizLearner(1, "a2")
    assert not double_graded(waiter, attempt("a2", by="deadline"), emails=1)
    assert double_graded(waiter, attempt("a2", by="deadline"), emails=2)


def test_quiz_metrics() -> None:
    learners = [
        QuizLearner(0, "a0", acknowledged={"q0": "a"}, submitted=True, submit_score=3),
        QuizLearner(1, "a1", acknowledged={"q0": "b", "q1": ["a"]}),
        QuizLearner(2, "a2", acknowledged={"q0": "c"}),
        QuizLearner(3, "a3"),
    ]
    attempts = {
        "a0": attempt("a0", by="learner", answers={"q0": "a"}),
        "a1": attempt("a1", by="deadline", late_s=0.4, answers={"q0": "b"}),  # q1 lost
        "a2": attempt("a2", by="deadline", late_s=2.5, answers={"q0": "c"}),
        "a3": attempt("a3", by=None),  # never closed
    }
    graded_rows = {"a0": 20, "a1": 20, "a2": 19}
    m = quiz_metrics(learners, attempts, graded_rows, {1: 1, 2: 1}, questions=20)
    assert m["attempts"] == 4
    assert m["submitted_by_learner"] == 1
    assert m["deadline_closed"] == 2
    assert m["deadline_unclosed"] == 1
    assert m["deadline_late_max_s"] == pytest.approx(2.5)
    assert m["deadline_late_p50_s"] == pytest.approx(1.45)
    assert m["graded_incomplete"] == 1
    assert m["answers_acknowledged"] == 4
    assert m["lost_answers"] == 1
    assert m["double_grades"] == 0
    assert m["result_emails"] == 2
    verdicts = {t.key: t.check(m)[0] for t in quiz_targets()}
    assert verdicts["deadline_late_max_s"] == "MISS"
    assert verdicts["deadline_unclosed"] == "MISS"
    assert verdicts["lost_answers"] == "MISS"
    assert verdicts["double_grades"] == "PASS"
    assert "lost answers 1" in summary_line("quiz", m)


def test_learn_targets_hold_the_issues_figures() -> None:
    by_key = {t.key: t for t in learn_targets()}
    for route in ("catalogue", "outline", "lesson", "complete"):
        assert by_key[f"{route}_p99_ms"].check({f"{route}_p99_ms": 100.0})[0] == "PASS"
        assert by_key[f"{route}_p99_ms"].check({f"{route}_p99_ms": 100.5})[0] == "MISS"
    assert by_key["errors"].check({"errors": 1.0})[0] == "MISS"


def test_every_answer_the_learners_give_is_valid_for_the_seeded_quiz() -> None:
    definition = quiz_definition(20, 60)
    assert [q.id for q in definition.questions] == [f"q{i}" for i in range(20)]
    assert definition.time_limit_seconds == 60
    for round_ in range(6):
        answers = {str(q.id): answer_for(str(q.id), round_) for q in definition.questions}
        assert check_answers(definition, answers) == answers
    # Successive rounds change every answer: a save lost between them shows.
    assert all(answer_for(f"q{i}", 0) != answer_for(f"q{i}", 1) for i in range(5))


async def test_client_sends_the_bearer_token_and_an_empty_body_on_a_bodiless_post() -> None:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = HttpClient(f"http://127.0.0.1:{port}", timeout=5)
        answer = await client.request("POST", "/enroll", token="tok-123")
        anonymous = await client.request("GET", "/courses")
    finally:
        server.close()
        await server.wait_closed()
    assert answer.status == anonymous.status == 200
    signed, plain = received
    assert b"Authorization: Bearer tok-123\r\n" in signed
    assert b"Content-Length: 0\r\n" in signed
    assert b"Authorization" not in plain and b"Content-Length" not in plain


def test_the_cli_lists_the_learning_scenarios_and_checks_their_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from devtools.bench.cli import main

    assert main([]) == 2
    listing = capsys.readouterr().err
    assert "  learn " in listing and "  quiz " in listing
    assert main(["quiz", "--time-limit", "5"]) == 2  # the contract's minimum is 10 s
    assert "--time-limit" in capsys.readouterr().err
    assert main(["learn", "--learners", "0"]) == 2
    assert main(["quiz", "--start-spread", "-1"]) == 2  # 0: all at once; no less
    assert "--start-spread" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--courses" in capsys.readouterr().out


def test_every_save_answers_something_and_rounds_cover_every_question() -> None:
    questions = [f"q{i}" for i in range(20)]
    batches = [save_batch(questions, round_) for round_ in range(30)]
    assert batches[0] == ["q0", "q1"]
    assert batches[1] == ["q1", "q2", "q3"]  # changes q1, saved in the round before
    assert all(len(batch) == 3 for batch in batches[1:])
    assert set().union(*batches[:10]) == set(questions)
    assert save_batch(["q0"], 5) == ["q0"]


def test_a_save_refused_at_the_deadline_is_fair_only_if_answered_after_it() -> None:
    deadline = 1000.0

    def save(sent: float, answered: float | None, status: int | None, error: str | None) -> bool:
        return refused_at_deadline(RouteRecord("save", 0, sent, answered, status, error), deadline)

    assert save(999.0, 1000.2, 409, "attempt_closed")  # sent before, decided after: fair
    assert save(1000.1, 1000.2, 409, "attempt_closed")
    assert not save(999.5, 999.9, 409, "attempt_closed")  # closed early: an error
    assert not save(999.0, 1000.2, 409, "version_conflict")  # another refusal
    assert not save(999.0, 1000.2, 500, "internal")
    assert not save(999.0, None, None, "TimeoutError: ")  # no answer at all
