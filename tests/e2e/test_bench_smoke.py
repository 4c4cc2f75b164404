"""``authflow bench spike`` at a small N, end to end: it starts its own stack
(``authflow dev --no-mail-sink``), fires the spike and writes its JSON and chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
