"""``authflow bench spike`` and ``announce`` at a small N, end to end: each starts its
own stack (``authflow dev --no-mail-sink``), runs its load and writes its JSON and chart."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from devtools.bench import stats

pytestmark = pytest.mark.e2e

N = 20


@pytest.mark.timeout(300)
def test_spike_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "authflow.cli", "bench", "spike", "--n", str(N), "--runs", "1",
         "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "PASS" in completed.stdout or "MISS" in completed.stdout

    report = json.loads((out / "spike.json").read_text())
    assert report["scenario"] == "spike"
    [variant] = report["variants"]
    assert variant["errors"] == []
    [run] = variant["runs"]
    metrics = run["metrics"]
    assert metrics["requests"] == N
    assert metrics["accepted"] == N
    assert metrics["non_2xx"] == 0
    assert metrics["delivered"] == N
    assert metrics["lost"] == 0
    assert metrics["duplicated"] == 0
    assert len(run["series"]["ack_s"]) == N
    assert metrics["max_1s_register"] <= report["rate_limits"]["register"]
    assert metrics["probe_count"] > 0
    assert metrics["floor_ms"] > 0
    assert {t["verdict"] for t in variant["targets"]} <= {"PASS", "MISS", "n/a"}

    png = out / "spike.png"
    assert png.exists()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(180)
def test_floor_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "authflow.cli", "bench", "floor", "--n", "10", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((out / "floor.json").read_text())
    assert report["workflows"] == 10
    for figure in ("temporal_cpu_ms", "sdk_cpu_ms", "hash_ms", "max_rate"):
        assert report[figure] > 0, figure
    assert "best end-to-end rate" in completed.stdout


# A limit the broadcast can reach on a small machine, so the pacer is what keeps it there.
ANNOUNCE_RATE = 10.0
RECIPIENTS = 30


@pytest.mark.timeout(300)
def test_announce_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "authflow.cli", "bench", "announce", "--n", str(RECIPIENTS),
         "--announce-rate", str(ANNOUNCE_RATE), "--code-rate", "2", "--duration", "3",
         "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((out / "announce.json").read_text())
    assert report["rate_limits"]["announcement"] == ANNOUNCE_RATE
    [variant] = report["variants"]
    assert variant["errors"] == []
    [run] = variant["runs"]
    m = run["metrics"]

    # Every active user exactly once: the N written to the database, the 2 x 6 whose
    # passwords are reset, and the admin who sends it (read from the sink's raw records).
    sends = run["events"]["sends"]
    accepted = Counter(to for kind, to, _, _, ok in sends if kind == "announcement" and ok)
    assert len(accepted) == RECIPIENTS + 12 + 1 == m["announce_audience"] == m["api_total"]
    assert set(accepted.values()) == {1}
    assert (m["announce_lost"], m["announce_duplicated"], m["announce_repeats"]) == (0, 0, 0)
    assert m["api_sent"] == m["api_total"] and m["api_done"] == 1

    # No rolling second above the configured limit, counted here from the raw records.
    times = [at for kind, _, _, at, ok in sends if kind == "announcement" and ok]
    assert stats.max_in_window(times) <= ANNOUNCE_RATE
    assert m["max_1s_announcement"] <= ANNOUNCE_RATE

    # The codes arrived, alone and beside the broadcast, within their own limits.
    for phase in ("base_", "during_"):
        assert m[f"{phase}code_requests"] == 12
        assert m[f"{phase}code_non_2xx"] == 0
        assert m[f"{phase}reg_lost"] == m[f"{phase}reset_lost"] == 0
        assert m[f"{phase}reset_inbox_p50_ms"] is not None
    assert m["max_1s_register"] <= report["rate_limits"]["register"]
    assert m["max_1s_password_reset"] <= report["rate_limits"]["password_reset"]
    assert (out / "announce.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
