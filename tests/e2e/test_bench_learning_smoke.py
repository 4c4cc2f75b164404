"""``authflow bench learn`` and ``authflow bench quiz`` at tiny sizes, end to end: each
starts its own stack, seeds it, runs its learners and writes its JSON and chart.  What
is checked is behaviour (no error, nothing lost, every figure present), not speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"


def run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "authflow.cli", "bench", *args, "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=270,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((out / f"{args[0]}.json").read_text())
    assert report["scenario"] == args[0]
    assert (out / f"{args[0]}.png").read_bytes()[:8] == PNG
    return report, completed.stdout


@pytest.mark.timeout(300)
def test_learn_at_small_size(tmp_path: Path) -> None:
    report, stdout = run_bench(
        tmp_path, "learn", "--courses", "5", "--learners", "4", "--duration", "5", "--think", "0.3"
    )
    [variant] = report["variants"]
    assert variant["errors"] == []
    [run] = variant["runs"]
    m = run["metrics"]
    assert m["courses"] == 5 and m["learners"] == 4
    assert m["errors"] == 0, run["events"]["error_counts"]
    for route in ("catalogue", "outline", "enrol", "lesson", "complete"):
        assert m[f"{route}_count"] > 0, route
        assert m[f"{route}_errors"] == 0, route
        assert 0 < m[f"{route}_p50_ms"] <= m[f"{route}_p99_ms"] <= m[f"{route}_max_ms"], route
        assert len(run["series"][f"route_{route}"]) == 2 * m[f"{route}_count"], route
    assert m["all_requests"] == sum(
        m[f"{r}_count"] for r in ("catalogue", "outline", "enrol", "lesson", "complete")
    )
    verdicts = {t["metric"]: t["verdict"] for t in variant["targets"]}
    assert set(verdicts) == {
        "catalogue_p99_ms", "outline_p99_ms", "lesson_p99_ms", "complete_p99_ms", "errors"
    }  # fmt: skip
    assert verdicts["errors"] == "PASS"
    assert "catalogue: p50 / p99 / max (ms)" in stdout


@pytest.mark.timeout(300)
def test_quiz_at_small_size(tmp_path: Path) -> None:
    learners = 6
    report, stdout = run_bench(
        tmp_path, "quiz", "--learners", str(learners), "--time-limit", "10",
        "--save-interval", "2",
    )  # fmt: skip
    [variant] = report["variants"]
    assert variant["errors"] == []
    [run] = variant["runs"]
    m = run["metrics"]
    assert m["errors"] == 0, run["events"]["error_counts"]
    assert m["start_count"] == learners
    assert m["save_count"] > learners
    assert m["submit_count"] == learners / 2
    assert m["attempts"] == learners
    # Half submitted, the other half were closed by their deadline, and none stayed open.
    assert m["submitted_by_learner"] == learners / 2
    assert m["deadline_closed"] == learners / 2
    assert m["deadline_unclosed"] == 0
    assert 0 <= m["deadline_late_p50_s"] <= m["deadline_late_max_s"]
    assert len(run["series"]["deadline_late_s"]) == learners / 2
    assert m["answers_acknowledged"] > 0
    assert m["lost_answers"] == 0, run["events"]["lost_answers"]
    assert m["double_grades"] == 0, run["events"]["double_grades"]
    assert m["graded_incomplete"] == 0
    # One "time is up" email per attempt the deadline closed, none for a submitted one.
    assert m["result_emails"] == learners / 2
    verdicts = {t["metric"]: t["verdict"] for t in variant["targets"]}
    for metric in ("deadline_unclosed", "lost_answers", "double_grades", "errors"):
        assert verdicts[metric] == "PASS", metric
    assert verdicts["deadline_late_max_s"] in {"PASS", "MISS"}  # a loaded machine may be late
    assert "deadline close after deadline" in stdout
