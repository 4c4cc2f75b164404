"""``authflow bench SCENARIO [options]``: spike, steady, isolation, scale, faults, learn,
quiz (``devtools.bench.learning``), announce (``devtools.bench.announce``), all, ``floor``
(``devtools.bench.floor``) or ``timing`` (``devtools.bench.timing``).

Runs each selected scenario ``--runs`` times, prints a table of the medians with a
PASS/MISS line per target, and writes ``<out>/<scenario>.json`` and ``.png``.  The exit
code is 0 even when targets are missed; 1 when a run could not be carried out.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from devtools.bench import learning
from devtools.bench.announce import run_announce
from devtools.bench.report import VariantResult, render_table, write_chart, write_json
from devtools.bench.scenarios import (
    BenchOptions,
    RunResult,
    Scenario,
    Variant,
    build_scenarios,
    median_metrics,
    rate_limits,
    run_once,
)
from devtools.bench.targets import Metrics

SCENARIO_NAMES = ("spike", "steady", "isolation", "scale", "faults", "learn", "quiz")
LEARNING_LOADS = ("learn", "quiz")
# Not in `all`: at the contract's size (10,000 at 5/s) it alone takes 35 minutes.
LONG_SCENARIOS = ("announce",)
DEFAULT_N = {"announce": 10_000}  # else 500

# One run of one variant: scenarios.run_once, learning.run_once or announce.run_announce.
Runner = Callable[[BenchOptions, Variant, dict[str, float], Path], Awaitable[RunResult]]

# What each scenario does, for `authflow bench` without a scenario and for --help.
SCENARIOS_HELP = {
    "spike": "N registrations at once; ack latency, drain time, lost emails (--n)",
    "steady": "registrations at a steady rate (--rate, --duration)",
    "isolation": "a spike while password resets must still arrive on time",
    "scale": "the spike with 1, 2 and 4 worker processes (own stacks only)",
    "faults": "the spike with transient and permanent SMTP failures",
    "learn": "learners browse, enrol, open and complete lessons; p99 per route "
    "(--courses, --learners, --duration; own stacks only)",
    "quiz": "learners start a timed quiz in the same second; deadline closes, lost answers, "
    "double grades (--learners, --time-limit, --start-spread; own stacks only)",
    "announce": "an announcement to N users (10,000) on its queue, codes beside it "
    "(--n, --announce-rate; own stacks only; not in all)",
    "all": "every scenario above but announce, one after the other",
    "floor": "CPU floor of one registration on this machine (`authflow bench floor --help`)",
    "timing": "known vs unknown email: login, resend-otp, forgot answer alike? (--n)",
}


def scenarios_text() -> str:
    width = max(map(len, SCENARIOS_HELP))
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in SCENARIOS_HELP.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authflow bench",
        description="The project's load benchmark (docs/benchmarks.md). By default each\n"
        "scenario starts its own stack in a temporary directory.",
        epilog="scenarios:\n" + scenarios_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenario",
        choices=[*SCENARIO_NAMES, *LONG_SCENARIOS, "all", "floor", "timing"],
        help="what to run (below)",
    )
    parser.add_argument(
        "--n", type=int, help="registrations in a spike (500); announce: recipients (10000)"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="steady: registrations/s (10)")
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="steady, learn, announce: seconds of load (30)",
    )
    parser.add_argument(
        "--code-rate",
        type=float,
        default=2.0,
        help="announce: registrations/s and password resets/s, each, alone and then "
        "during the announcement (2)",
    )
    parser.add_argument(
        "--announce-rate",
        type=float,
        help="announce: the email-announcement limit (per s) the started stack gets through "
        "EMAIL_RATE_LIMITS (default: as configured, the contract's 5)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per scenario; medians reported (1)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes, except scale (1)")
    parser.add_argument(
        "--attach",
        metavar="URL",
        help="use the running stack at URL instead of starting one; it must send mail to "
        "--sink-host:--sink-port (start it with SMTP_PORT=<port> authflow dev --no-mail-sink)",
    )
    parser.add_argument("--sink-host", default="127.0.0.1", help="with --attach: sink address")
    parser.add_argument(
        "--sink-port", type=int, default=1025, help="with --attach: sink port (1025)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    learning = parser.add_argument_group("learn and quiz")
    learning.add_argument(
        "--courses", type=int, default=1000, help="learn: published courses of 10x10 lessons (1000)"
    )
    learning.add_argument("--learners", type=int, help="signed-in learners (learn: 200, quiz: 300)")
    learning.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="learn: mean seconds between one learner's requests (1)",
    )
    learning.add_argument(
        "--time-limit",
        type=int,
        default=60,
        help="quiz: the attempt's time limit in seconds, 10 to 86400 (60)",
    )
    learning.add_argument(
        "--save-interval", type=float, default=5.0, help="quiz: seconds between saves (5)"
    )
    learning.add_argument(
        "--start-spread",
        type=float,
        default=1.0,
        help='quiz: the starts arrive uniformly over this many seconds, "in the same '
        'second" (1); 0 fires them all at once',
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=180.0,
        help="seconds after the first request to wait for every email (180)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each started stack's directory (SQLite database, Temporal state) for a "
        "post-mortem; its path is in the JSON (runs[].events.stack_dir)",
    )
    return parser


# The two measurements apart from the load scenarios: what they do, their --n and its help.
_APART = {
    "floor": (
        "CPU floor of a registration on this machine: one argon2id hash plus one Temporal "
        "workflow with one no-op activity (docs/benchmarks.md).",
        300,
        "workflows (300)",
    ),
    "timing": (
        "Whether login, resend-otp and password/forgot answer a known and an unknown email "
        "in the same time (the contract: medians within 5 ms).",
        40,
        "addresses of each sort (40)",
    ),
}


def _apart_parser(name: str) -> argparse.ArgumentParser:
    description, n, n_help = _APART[name]
    parser = argparse.ArgumentParser(prog=f"authflow bench {name}", description=description)
    parser.add_argument("--n", type=int, default=n, help=n_help)
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    return parser


def _run_apart(name: str, argv: list[str]) -> int:
    args = _apart_parser(name).parse_args(argv)
    if args.n < 1:
        print(f"authflow bench {name}: --n must be positive", file=sys.stderr)
        return 2
    if name == "floor":
        from devtools.bench import floor

        return floor.main(args.n, args.out, rate_limits()["register"])
    from devtools.bench import timing

    return timing.main(args.n, args.out)


def main(argv: list[str]) -> int:
    if not argv:
        # A bare `authflow bench` used to start a 500-registration spike; ask instead.
        print(
            "authflow bench: which scenario? Choose one:\n"
            + scenarios_text()
            + "\nfor example `authflow bench spike --n 100`; `authflow bench --help` for options.",
            file=sys.stderr,
        )
        return 2
    if argv[0] in _APART:
        return _run_apart(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    n = args.n if args.n is not None else DEFAULT_N.get(args.scenario, 500)
    positive = (n, args.runs, args.workers, args.rate, args.duration, args.code_rate)
    if min(positive) <= 0 or (args.announce_rate is not None and args.announce_rate <= 0):
        print(
            "authflow bench: --n, --runs, --workers, --rate, --duration, --code-rate and "
            "--announce-rate must be positive",
            file=sys.stderr,
        )
        return 2
    if (
        args.courses < 1
        or (args.learners is not None and args.learners < 1)
        or args.think <= 0
        or args.save_interval <= 0
        or args.start_spread < 0
    ):
        print(
            "authflow bench: --courses, --learners, --think and --save-interval must be "
            "positive, --start-spread not negative",
            file=sys.stderr,
        )
        return 2
    if not 10 <= args.time_limit <= 86_400:
        # The contract's bounds of a quiz's time_limit_seconds.
        print("authflow bench: --time-limit must be within 10..86400 seconds", file=sys.stderr)
        return 2
    options = BenchOptions(
        n=n,
        rate=args.rate,
        duration=args.duration,
        code_rate=args.code_rate,
        announce_rate=args.announce_rate,
        runs=args.runs,
        workers=args.workers,
        attach=args.attach,
        sink_host=args.sink_host,
        sink_port=args.sink_port,
        out=args.out,
        drain_timeout=args.drain_timeout,
        keep=args.keep,
        courses=args.courses,
        learners=args.learners,
        think=args.think,
        time_limit=args.time_limit,
        save_interval=args.save_interval,
        start_spread=args.start_spread,
    )
    names = SCENARIO_NAMES if args.scenario == "all" else (args.scenario,)
    command = "authflow bench " + " ".join(argv)
    try:
        return asyncio.run(_run(options, names, command))
    except KeyboardInterrupt:
        return 130


async def _run(options: BenchOptions, names: tuple[str, ...], command: str) -> int:
    limits = rate_limits()
    if options.announce_rate is not None:
        limits["announcement"] = options.announce_rate
    scenarios = build_scenarios(options, limits)
    failed = False
    for name in names:
        scenario = scenarios[name]
        if scenario.own_stack_only and options.attach:
            print(f"== {name}: skipped ({scenario.own_stack_only}; not with --attach)")
            continue
        results = [await _run_variant(options, scenario, v, limits) for v in scenario.variants]
        failed = failed or any(r.errors for r in results)
        print(render_table(scenario, results, options.runs), flush=True)
        write_json(options.out / f"{name}.json", scenario, results, options, limits, command)
        write_chart(options.out / f"{name}.png", scenario, results, limits)
        print(f"wrote {options.out / name}.json and .png\n", flush=True)
    return 1 if failed else 0


async def _run_variant(
    options: BenchOptions, scenario: Scenario, variant: Variant, limits: dict[str, float]
) -> VariantResult:
    runs: list[RunResult] = []
    errors: list[str] = []
    slug = re.sub(r"[^a-z0-9]+", "-", variant.name.lower()).strip("-")
    for index in range(options.runs):
        log_file = options.out / "logs" / f"{scenario.name}-{slug}-run{index + 1}.log"
        print(f"-- {scenario.name} [{variant.name}] run {index + 1}/{options.runs} ...", flush=True)
        try:
            result = await _runner(variant)(options, variant, limits, log_file)
        except Exception as exc:  # report it, carry on with the other runs
            errors.append(f"run {index + 1}: {type(exc).__name__}: {exc}")
            print(f"   failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        runs.append(result)
        print(_run_line(variant, result.metrics), flush=True)
    return VariantResult(variant, runs, median_metrics(runs) if runs else {}, errors)


def _runner(variant: Variant) -> Runner:
    if variant.load in LEARNING_LOADS:
        return learning.run_once
    if variant.load == "announce":
        return run_announce
    return run_once


def _run_line(variant: Variant, m: Metrics) -> str:
    if variant.load in LEARNING_LOADS:
        return "   " + learning.summary_line(variant.load, m)
    if variant.load == "announce":
        return (
            "   announcement: {d:.0f}/{a:.0f} delivered, lost {lost:.0f}, duplicated {dup:.0f}, "
            "{rate} /s steady, busiest second {top:.0f}, {total} s".format(
                d=m["announce_delivered"] or 0,
                a=m["announce_audience"] or 0,
                lost=m["announce_lost"] or 0,
                dup=m["announce_duplicated"] or 0,
                rate=f"{m['announce_rate_steady']:.2f}" if m.get("announce_rate_steady") else "-",
                top=m.get("max_1s_announcement") or 0,
                total=f"{m['announce_total_s']:.1f}" if m.get("announce_total_s") else "-",
            )
        )
    return "   acked {a:.0f}/{r:.0f}, ack p99 {p:.0f} ms, lost {lost:.0f}, drain {d} s".format(
        a=m["accepted"] or 0,
        r=m["requests"] or 0,
        p=m.get("ack_p99_ms") or 0,
        lost=m["lost"] or 0,
        d=f"{m['drain_s']:.1f}" if m.get("drain_s") else "-",
    )
