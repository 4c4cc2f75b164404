"""Per scenario: a table on stdout, ``<out>/<scenario>.json`` and ``<out>/<scenario>.png``."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools.bench import stats
from devtools.bench.learning import LEARN_ROUTES, QUIZ_ROUTES
from devtools.bench.scenarios import KINDS, BenchOptions, RunResult, Scenario, Variant
from devtools.bench.targets import Metrics


@dataclass
class VariantResult:
    variant: Variant
    runs: list[RunResult]
    median: Metrics
    errors: list[str]


# label, metric keys (shown joined by " / "), number format
Row = tuple[str, tuple[str, ...], str]

# The learn and quiz scenarios (devtools.bench.learning).
LEARNING_ROWS: list[Row] = [
    ("courses / learners / seeding (s)", ("courses", "learners", "seed_s"), "{:.0f}"),
    ("questions / time limit (s)", ("questions", "time_limit_s"), "{:.0f}"),
    ("requests / errors", ("all_requests", "errors"), "{:.0f}"),
    *(
        row
        for route in (*LEARN_ROUTES, *QUIZ_ROUTES)
        for row in (
            (f"{route}: requests / errors", (f"{route}_count", f"{route}_errors"), "{:.0f}"),
            (
                f"{route}: p50 / p99 / max (ms)",
                (f"{route}_p50_ms", f"{route}_p99_ms", f"{route}_max_ms"),
                "{:.0f}",
            ),
        )
    ),
    ("start requests fired within (s)", ("start_spread_s",), "{:.2f}"),
    ("saves refused at their deadline", ("late_saves",), "{:.0f}"),
    (
        "attempts / submitted / closed at deadline / left open",
        ("attempts", "submitted_by_learner", "deadline_closed", "deadline_unclosed"),
        "{:.0f}",
    ),
    (
        "deadline close after deadline p50 / p99 / max (s)",
        ("deadline_late_p50_s", "deadline_late_p99_s", "deadline_late_max_s"),
        "{:.3f}",
    ),
    ("answers acknowledged / lost", ("answers_acknowledged", "lost_answers"), "{:.0f}"),
    (
        "double grades / incompletely graded / result emails",
        ("double_grades", "graded_incomplete", "result_emails"),
        "{:.0f}",
    ),
]

ROWS: list[Row] = [
    ("requests / accepted / non-2xx", ("requests", "accepted", "non_2xx"), "{:.0f}"),
    ("requests fired within (s)", ("fire_spread_s",), "{:.2f}"),
    (
        "ack latency p50 / p95 / p99 / max (ms)",
        ("ack_p50_ms", "ack_p95_ms", "ack_p99_ms", "ack_max_ms"),
        "{:.0f}",
    ),
    ("one argon2id hash (ms) / cores", ("hash_ms", "cores"), "{:.1f}"),
    ("hashing floor N x hash / cores (ms)", ("floor_ms",), "{:.0f}"),
    (
        "delivered / lost / duplicated / unexpected",
        ("delivered", "lost", "duplicated", "unexpected"),
        "{:.0f}",
    ),
    (
        "time to inbox p50 / p95 / p99 (ms)",
        ("inbox_p50_ms", "inbox_p95_ms", "inbox_p99_ms"),
        "{:.0f}",
    ),
    (
        "announcement: audience / delivered / lost / duplicated",
        ("announce_audience", "announce_delivered", "announce_lost", "announce_duplicated"),
        "{:.0f}",
    ),
    (
        "  repeats after a retried send / unexpected",
        ("announce_repeats", "announce_unexpected"),
        "{:.0f}",
    ),
    (
        "  accepted/s: steady part / overall / target",
        ("announce_rate_steady", "announce_rate", "announce_rate_target"),
        "{:.2f}",
    ),
    (
        "  total (s) / N / limit / target; first send after (s)",
        ("announce_total_s", "announce_ideal_s", "announce_target_s", "announce_first_s"),
        "{:.1f}",
    ),
    (
        "  its own figures: total / sent / failed / skipped / repeats",
        ("api_total", "api_sent", "api_failed", "api_skipped", "api_repeats"),
        "{:.0f}",
    ),
    (
        "codes alone: requests / non-2xx / lost reg / lost reset",
        ("base_code_requests", "base_code_non_2xx", "base_reg_lost", "base_reset_lost"),
        "{:.0f}",
    ),
    (
        "  register time to inbox p50 / p99 (ms)",
        ("base_reg_inbox_p50_ms", "base_reg_inbox_p99_ms"),
        "{:.0f}",
    ),
    (
        "  reset time to inbox p50 / p99 (ms)",
        ("base_reset_inbox_p50_ms", "base_reset_inbox_p99_ms"),
        "{:.0f}",
    ),
    (
        "codes with it: requests / sent while it drained / non-2xx",
        ("during_code_requests", "code_requests_while_draining", "during_code_non_2xx"),
        "{:.0f}",
    ),
    ("  lost reg / lost reset", ("during_reg_lost", "during_reset_lost"), "{:.0f}"),
    (
        "  register time to inbox p50 / p99 (ms)",
        ("during_reg_inbox_p50_ms", "during_reg_inbox_p99_ms"),
        "{:.0f}",
    ),
    (
        "  reset time to inbox p50 / p99 (ms)",
        ("during_reset_inbox_p50_ms", "during_reset_inbox_p99_ms"),
        "{:.0f}",
    ),
    (
        "busiest 1 s accepted: register / reset / notification / announcement",
        tuple(f"max_1s_{k}" for k in KINDS),
        "{:.0f}",
    ),
    (
        "  same, every DATA answered (refusals too)",
        tuple(f"max_1s_{k}_data" for k in KINDS),
        "{:.0f}",
    ),
    (
        "  same, lower bound given the sink's lag",
        tuple(f"max_1s_{k}_lower" for k in KINDS),
        "{:.0f}",
    ),
    ("send attempts register / failed", ("attempts_register", "failed_attempts"), "{:.0f}"),
    ("register send rate with a backlog (/s)", ("send_rate_register",), "{:.2f}"),
    ("drain (s) / N / limit / target", ("drain_s", "drain_ideal_s", "drain_target_s"), "{:.1f}"),
    ("/healthz p50 / p99 / max (ms)", ("probe_p50_ms", "probe_p99_ms", "probe_max_ms"), "{:.1f}"),
    ("/healthz probes / failed", ("probe_count", "probe_fail"), "{:.0f}"),
    (
        "reset requests / non-2xx / lost / dup",
        ("reset_requests", "reset_non_2xx", "reset_lost", "reset_duplicated"),
        "{:.0f}",
    ),
    (
        "reset time to inbox p50 / p95 / p99 (ms)",
        ("reset_inbox_p50_ms", "reset_inbox_p95_ms", "reset_inbox_p99_ms"),
        "{:.0f}",
    ),
    ("reset ack p50 / p99 (ms)", ("reset_ack_p50_ms", "reset_ack_p99_ms"), "{:.0f}"),
    (
        "CPU ms per registration: total / hash / rest",
        ("cpu_per_reg_ms", "cpu_hash_ms", "cpu_rest_ms"),
        "{:.1f}",
    ),
    (
        "  rest: API (w/o hash) / worker / Temporal",
        ("cpu_api_other_ms", "cpu_worker_ms", "cpu_temporal_ms"),
        "{:.1f}",
    ),
    (
        "until 99 % acked (s) / cores busy / codes sent",
        ("ackwin_s", "ackwin_busy", "ackwin_sends"),
        "{:.2f}",
    ),
    (
        "  CPU s meanwhile: API / worker / Temporal",
        ("ackwin_cpu_api_s", "ackwin_cpu_worker_s", "ackwin_cpu_temporal_s"),
        "{:.1f}",
    ),
    (
        "peak RSS MB: API / worker / Temporal",
        ("rss_api_mb", "rss_worker_mb", "rss_temporal_mb"),
        "{:.0f}",
    ),
    (
        "non-2xx: 429 / 500 / 503 / no answer",
        ("http_429", "http_500", "http_503", "http_no_answer"),
        "{:.0f}",
    ),
    (
        "CPU s: bench / other processes / steal",
        ("bench_cpu_s", "other_cpu_s", "steal_cpu_s"),
        "{:.1f}",
    ),
    ("  of which load / probe streams", ("load_cpu_s", "probe_cpu_s"), "{:.1f}"),
    *LEARNING_ROWS,
    ("CPU s: the stack (API, workers, Temporal)", ("stack_cpu_s",), "{:.1f}"),
    (
        "  of which API / worker / Temporal",
        ("cpu_api_s", "cpu_worker_s", "cpu_temporal_s"),
        "{:.1f}",
    ),
    ("API CPU per request (ms)", ("cpu_api_per_request_ms",), "{:.1f}"),
    ("load average (1 min) at the end", ("load_avg_1m",), "{:.2f}"),
    ("sink event-loop lag max (ms)", ("sink_loop_lag_max_ms",), "{:.1f}"),
]


def _cell(metrics: Metrics, keys: Sequence[str], fmt: str) -> str | None:
    values = [metrics.get(k) for k in keys]
    if all(v is None for v in values):
        return None
    return " / ".join("-" if v is None else fmt.format(v) for v in values)


def render_table(scenario: Scenario, results: list[VariantResult], runs: int) -> str:
    heading = f"== {scenario.name}: " + (f"median of {runs} runs" if runs > 1 else "1 run")
    names = [r.variant.name for r in results]
    rows: list[tuple[str, list[str]]] = []
    for label, keys, fmt in ROWS:
        found = [_cell(r.median, keys, fmt) for r in results]
        if any(c is not None for c in found):
            rows.append((label, [c or "-" for c in found]))
    width = max(len(label) for label, _ in rows) if rows else 10
    widths = [
        max([len(name), *(len(cells[i]) for _, cells in rows)]) for i, name in enumerate(names)
    ]
    lines = [
        heading,
        "  ".join([" " * width, *(n.rjust(w) for n, w in zip(names, widths, strict=True))]),
    ]
    for label, cells in rows:
        lines.append(
            "  ".join(
                [label.ljust(width), *(c.rjust(w) for c, w in zip(cells, widths, strict=True))]
            )
        )
    lines.append("targets:")
    for result in results:
        for target in scenario.targets:
            verdict, value, limit = target.check(result.median)
            shown = "-" if value is None else f"{value:.4g}"
            bound = "-" if limit is None else f"{limit:.4g}"
            where = f"[{result.variant.name}] {target.label}"
            lines.append(f"  {verdict:4}  {where}: {shown} {target.op} {bound}")
        for error in result.errors:
            lines.append(f"  ERROR [{result.variant.name}] {error}")
    return "\n".join(lines)


def write_json(
    path: Path,
    scenario: Scenario,
    results: list[VariantResult],
    options: BenchOptions,
    limits: dict[str, float],
    command: str,
) -> None:
    document: dict[str, Any] = {
        "scenario": scenario.name,
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "rate_limits": limits,
        "variants": [],
    }
    for result in results:
        targets = []
        for target in scenario.targets:
            verdict, value, limit = target.check(result.median)
            targets.append(
                {
                    "label": target.label,
                    "metric": target.key,
                    "op": target.op,
                    "value": value,
                    "limit": limit,
                    "verdict": verdict,
                }
            )
        document["variants"].append(
            {
                **asdict(result.variant),
                "median": result.median,
                "targets": targets,
                "errors": result.errors,
                "runs": [
                    {"metrics": run.metrics, "series": run.series, "events": run.events}
                    for run in result.runs
                ],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def machine_info() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_chart(
    path: Path, scenario: Scenario, results: list[VariantResult], limits: dict[str, float]
) -> None:
    """Two panels: rolling one-second acceptances per kind against the limit; ack latency.
    The learning scenarios: latency per route over time, and its distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if any(key.startswith("route_") for r in results for run in r.runs for key in run.series):
        _route_chart(path, scenario, results, plt)
        return
    fig, (sends, acks) = plt.subplots(2, 1, figsize=(11, 8.5))
    shown_limits: set[str] = set()
    for result in results:
        if not result.runs:
            continue
        series = result.runs[-1].series
        timed = [v for key, v in series.items() if key.startswith("accepts_") and v]
        end = max((max(v) for v in timed), default=1.0) + 1.0
        for kind in KINDS:
            accepts = series.get(f"accepts_{kind}", [])
            if not accepts:
                continue
            points = stats.rolling_counts(accepts, start=min(0.0, min(accepts)), stop=end, step=0.1)
            label = f"{kind}" if len(results) == 1 else f"{result.variant.name}: {kind}"
            sends.step([p[0] for p in points], [p[1] for p in points], where="post", label=label)
            if kind not in shown_limits:
                sends.axhline(limits[kind], linestyle="--", color="black", linewidth=0.8)
                sends.annotate(
                    f"{kind} limit {limits[kind]:g}/s",
                    (0, limits[kind]),
                    xytext=(3, 2),
                    textcoords="offset points",
                    fontsize=8,
                )
                shown_limits.add(kind)
        latencies = series.get("ack_s", [])
        if latencies:
            acks.hist(latencies, bins=40, alpha=0.55, label=result.variant.name)
    floors = [r.median.get("floor_ms") for r in results if r.median.get("floor_ms")]
    if floors and scenario.name != "steady":
        floor = (floors[0] or 0.0) / 1000
        acks.axvline(floor, color="red", linestyle="--", linewidth=1)
        acks.annotate(
            f"hashing floor {floor:.1f} s",
            (floor, 0),
            xytext=(4, 20),
            textcoords="offset points",
            fontsize=8,
            color="red",
        )
    sends.set_title(f"{scenario.name}: messages accepted in the rolling 1 s window [t, t+1)")
    sends.set_xlabel("seconds since t0 (first request)")
    sends.set_ylabel("accepted per second")
    if sends.get_legend_handles_labels()[0]:
        sends.legend(fontsize=8, loc="upper right")
    acks.set_title("ack latency of accepted requests")
    acks.set_xlabel("seconds")
    acks.set_ylabel("requests")
    if len(results) > 1:
        acks.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _route_chart(path: Path, scenario: Scenario, results: list[VariantResult], plt: Any) -> None:
    """Latency of each 2xx answer over time per route (log scale), and for ``quiz`` the
    deadline closes' lateness; the last run of each variant."""
    fig, (over_time, lower) = plt.subplots(2, 1, figsize=(11, 8.5))
    for result in results:
        if not result.runs:
            continue
        series = result.runs[-1].series
        for key, values in sorted(series.items()):
            if not key.startswith("route_"):
                continue
            sent, latency = values[0::2], [v * 1000 for v in values[1::2]]
            over_time.scatter(sent, latency, s=4, alpha=0.5, label=key.removeprefix("route_"))
            lower.hist(latency, bins=60, alpha=0.5, label=key.removeprefix("route_"))
        late = series.get("deadline_late_s", [])
        if late:
            lower.clear()
            lower.hist(late, bins=40, color="tab:red")
            lower.set_title("deadline closes: closed_at - deadline")
            lower.set_xlabel("seconds")
            lower.set_ylabel("attempts")
        else:
            lower.set_title("latency of 2xx answers")
            lower.set_xlabel("ms")
            lower.set_ylabel("requests")
            lower.legend(fontsize=8)
    over_time.set_yscale("log")
    over_time.set_title(f"{scenario.name}: latency of each 2xx answer")
    over_time.set_xlabel("seconds since t0")
    over_time.set_ylabel("ms")
    if over_time.get_legend_handles_labels()[0]:
        over_time.legend(fontsize=8, markerscale=3, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
