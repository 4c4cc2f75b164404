"""The ``authflow`` command: dev, api, worker, migrate, bench."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Sequence

from authflow.policies import ALL_TASK_QUEUES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser(
        "dev", help="everything on one machine: Temporal, mail sink, DB, workers, API"
    )
    dev.add_argument(
        "--no-mail-sink", action="store_true", help="send to SMTP_HOST:SMTP_PORT instead"
    )
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--inbox-port", type=int, default=8025)
    dev.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes for email-register (default 1); one more serves the other queues",
    )

    sub.add_parser("api", help="the HTTP API only (uvicorn)")

    worker = sub.add_parser("worker", help="a worker process for the named task queues")
    worker.add_argument(
        "--queue", action="append", choices=ALL_TASK_QUEUES, dest="queues",
        help="task queue to poll (repeatable; default: all)",
    )  # fmt: skip

    sub.add_parser("migrate", help="apply migrations and seed roles, permissions, bootstrap admin")

    bench = sub.add_parser("bench", help="the registration-spike benchmark", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
        return asyncio.run(_run_worker(settings, args.queues or list(ALL_TASK_QUEUES)))
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
