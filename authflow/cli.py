"""The ``authflow`` command: dev, api, worker, migrate, bench."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Sequence

from authflow.policies import ALL_TASK_QUEUES

DESCRIPTION = """\
authflow: accounts with email verification, run by Temporal workflows.

Start here: `authflow dev` runs everything on this machine (no Docker, no downloads)
and prints every URL. In production run `authflow migrate` once, then `authflow api`
and one or more `authflow worker` processes. Settings come from environment variables
(see README.md)."""

DEV_DESCRIPTION = """\
Everything on one machine, no Docker: an embedded Temporal dev server with its Web UI,
an SMTP sink with a web inbox, the database (SQLite by default), migrations and seed
data, the workers and the API. Prints every URL; Ctrl-C stops all of it cleanly.
Every port already in use is reported at once, each with the flag that moves it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authflow",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="`authflow COMMAND --help` describes one command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev",
        help="everything on one machine: Temporal, mail sink, DB, workers, API",
        description=DEV_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument(
        "--no-mail-sink",
        action="store_true",
        help="start no mail sink; send to SMTP_HOST:SMTP_PORT instead",
    )
    dev.add_argument(
        "--api-port",
        type=int,
        metavar="N",
        help="port of the API (default: API_PORT, else 8000)",
    )
    dev.add_argument(
        "--temporal-port",
        type=int,
        default=7233,
        metavar="N",
        help="port of the embedded Temporal server; workers and API follow it "
        "(default: %(default)s)",
    )
    dev.add_argument(
        "--ui-port",
        type=int,
        default=8233,
        metavar="N",
        help="port of the Temporal Web UI (default: %(default)s)",
    )
    dev.add_argument(
        "--inbox-port",
        type=int,
        default=8025,
        metavar="N",
        help="port of the mail sink's web inbox (default: %(default)s)",
    )
    dev.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes for the registration queues; one more serves the other "
        "queues (default: %(default)s)",
    )

    sub.add_parser(
        "api", help="the HTTP API only (uvicorn on API_HOST:API_PORT)", description="The HTTP API."
    )

    worker = sub.add_parser(
        "worker",
        help="a worker process for the named task queues",
        description="A Temporal worker process for the named task queues.",
    )
    worker.add_argument(
        "--queue", action="append", choices=ALL_TASK_QUEUES, dest="queues",
        help="task queue to poll (repeatable; default: all)",
    )  # fmt: skip

    sub.add_parser(
        "migrate",
        help="apply migrations and seed roles, permissions, bootstrap admin",
        description="Apply the database migrations, then seed roles, permissions and the "
        "bootstrap admin (ADMIN_EMAIL / ADMIN_PASSWORD). Safe to run again.",
    )

    # Listed here for the top-level help only: main() hands everything after `bench`
    # to the benchmark's own parser, so `authflow bench --help` is that parser's help.
    sub.add_parser(
        "bench",
        help="the project's load benchmark: spike, steady, isolation, scale, faults, learn, "
        "quiz, floor (`authflow bench --help`)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        args = argparse.Namespace(command="bench", bench_args=argv[1:])
    else:
        args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except _UserFacingError as exc:
        print(f"authflow {args.command}: {exc}", file=sys.stderr)
        return 2


def _user_facing_errors() -> tuple[type[BaseException], ...]:
    from authflow.ports import PortTaken
    from authflow.settings import InsecureConfiguration

    errors: tuple[type[BaseException], ...] = (PortTaken, InsecureConfiguration)
    try:  # development tooling: absent from the production image
        from devtools.temporal_server import TemporalBinaryMissing
    except ImportError:
        return errors
    return (*errors, TemporalBinaryMissing)


class _UserFacingError(Exception):
    pass


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _user_facing_errors() as exc:
        raise _UserFacingError(str(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    from authflow.logging import configure_logging
    from authflow.settings import get_settings

    if args.command in ("dev", "bench") and importlib.util.find_spec("devtools") is None:
        raise _UserFacingError(
            "the development tools are not installed here (a production image has none); "
            "run it from a checkout set up with ./scripts/setup"
        )
    if args.command == "dev":
        from devtools.dev import DevOptions, run_dev

        return run_dev(
            DevOptions(
                mail_sink=not args.no_mail_sink,
                temporal_port=args.temporal_port,
                ui_port=args.ui_port,
                inbox_port=args.inbox_port,
                worker_processes=args.workers,
                api_port=args.api_port,
            )
        )
    if args.command == "bench":
        from devtools.bench.cli import main as bench_main

        return bench_main(args.bench_args)
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, process=args.command)
    if args.command == "api":
        return _run_api(settings)
    if args.command == "worker":
        with _worker_event_loop() as runner:
            return runner.run(_run_worker(settings, args.queues or list(ALL_TASK_QUEUES)))
    if args.command == "migrate":
        from authflow.migrate import migrate_and_seed

        created = asyncio.run(migrate_and_seed(settings))
        print("migrations applied; seeded: " + (", ".join(created) if created else "nothing new"))
        return 0
    raise AssertionError(args.command)


def _run_api(settings: object) -> int:
    import uvicorn

    from api.serving import uvicorn_options
    from authflow.ports import ensure_free
    from authflow.settings import Settings

    assert isinstance(settings, Settings)
    ensure_free(settings.api_host, settings.api_port, "the API", "API_PORT")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        access_log=False,
        **uvicorn_options(),
    )
    return 0


def _worker_event_loop() -> asyncio.Runner:
    """The worker's loop: uvloop's where installed (it comes with ``uvicorn[standard]``,
    and the API already runs on it), asyncio's own otherwise.  A send is many small
    tasks, callbacks and socket reads and writes (the SDK's completions, SMTP, the
    database), whose loop bookkeeping uvloop does in C (docs/benchmarks.md, "A
    registration's CPU on a fast VM, part by part")."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop (Windows)
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def _run_worker(settings: object, queues: list[str]) -> int:
    from authflow.settings import Settings
    from authflow.temporal import connect
    from workers.main import run_workers

    assert isinstance(settings, Settings)
    runtime = None
    if settings.worker_metrics_port:
        from authflow.temporal import runtime_with_metrics

        runtime = runtime_with_metrics(f"127.0.0.1:{settings.worker_metrics_port}")
    client = await connect(settings, runtime=runtime)
    await run_workers(settings, client, queues)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
