"""Build and run the workers of the selected task queues.

Every worker is built the same way from the declarations (``authflow.policies``: one
email kind = one queue, its rate): it registers every workflow type and every activity
(a run or activity lands on the queue it was started on); the queue's rate limit is
handed to the Temporal server
(``max_task_queue_activities_per_second``: enforced for all workers together) and to
the shared pacer (acceptances per rolling second, see ``activities.pacer``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.announcements import AnnouncementActivities
from activities.codes import CodeActivities
from activities.email import EmailActivities
from activities.learning import LearningActivities
from activities.mailer import Mailer, SmtpConfig
from activities.pacer import Pacer
from activities.quizzes import QuizActivities
from authflow.db import Database
from authflow.heap import freeze_startup_objects
from authflow.policies import QUIZ_ATTEMPTS, EmailKind, EmailPolicy, resolve_email_policies
from authflow.preferences import UNSUBSCRIBE_KEY_LABEL
from authflow.security.otp import CodeVault
from authflow.settings import Settings
from workflows.catalog import ALL_WORKFLOWS, QUIZ_WORKFLOWS

log = logging.getLogger("authflow.worker")

# In-flight sends finish on SIGTERM (graceful shutdown) within this time.
GRACEFUL_SHUTDOWN = timedelta(seconds=30)


@dataclass
class QueueDeps:
    """One email queue's activities and the database connections they use."""

    db: Database
    codes: CodeActivities
    email: EmailActivities
    mailer: Mailer
    announcements: AnnouncementActivities
    learning: LearningActivities


@dataclass
class WorkerDeps:
    queues: dict[str, QueueDeps]
    pacer: Pacer
    pacer_db: Database
    quizzes: QuizActivities
    quiz_db: Database

    @classmethod
    def build(cls, settings: Settings, policies: dict[EmailKind, EmailPolicy]) -> WorkerDeps:
        # The pacer's few, tiny transactions get their own connection: queued behind the
        # code bookkeeping of a registration spike, a send would miss its slot.
        pacer_db = Database(settings.database_url, pool_size=1, inline_sqlite=True)
        vault = CodeVault(settings.otp_key)
        pacer = Pacer(
            pacer_db,
            {p.task_queue: p.rate_per_second for p in policies.values()},
            lease_seconds=max(p.attempt_timeout_seconds for p in policies.values()),
        )
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
        queues = {}
        for policy in policies.values():
            # Each queue has its own connections (one on SQLite, where a process has one
            # per engine): a password reset's bookkeeping must not wait in line behind
            # the hundreds of sessions of a registration spike (isolation, issue 6).
            db = Database(
                settings.database_url, pool_size=queue_pool_size(policy), inline_sqlite=True
            )
            # One SMTP connection per queue, reused across its sends (``Mailer``).
            mailer = Mailer(smtp)
            email = EmailActivities(
                db,
                vault,
                mailer,
                pacer,
                sender=settings.mail_from,
                public_base_url=settings.public_base_url,
                unsubscribe_key=settings.derived_key(UNSUBSCRIBE_KEY_LABEL),
            )
            queues[policy.task_queue] = QueueDeps(
                db,
                CodeActivities(db, vault),
                email,
                mailer,
                AnnouncementActivities(db),
                LearningActivities(db, settings.public_base_url),
            )
        # Quiz deadlines get connections of their own: a close must not queue behind
        # an email spike's bookkeeping (it has 2 s).
        quiz_db = Database(settings.database_url, pool_size=2, inline_sqlite=True)
        return cls(
            queues=queues,
            pacer=pacer,
            pacer_db=pacer_db,
            quizzes=QuizActivities(quiz_db),
            quiz_db=quiz_db,
        )

    async def close(self) -> None:
        for queue in self.queues.values():
            await queue.mailer.close()
            await queue.db.dispose()
        await self.pacer_db.dispose()
        await self.quiz_db.dispose()


def queue_pool_size(policy: EmailPolicy) -> int:
    """Connections kept for one queue's bookkeeping (PostgreSQL; up to twice as many more
    under load): about one per 5 sends a second.  The three default queues keep 4 + 2 + 1
    (the one shared pool they replace kept 5)."""
    return max(1, round(policy.rate_per_second / 5))


def workflow_runner(*, sandboxed: bool = True) -> WorkflowRunner:
    """How workflow code runs: in the SDK's sandbox (the tests, and workers with
    ``WORKFLOW_SANDBOX=true``) or directly (the workers' default: see the setting)."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    # Workflows import only the SDK, the standard library, the declarations and their
    # inputs (tests/unit/test_layers.py), so nothing heavy needs passing through; the
    # pure declaration modules are passed through so that the registry of email types
    # is the one the process declared (a test module may add types at run time).
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


SANDBOX_PASSTHROUGH = ("authflow.policies", "authflow.emails")


def build_workers(
    client: Client,
    deps: WorkerDeps,
    policies: dict[EmailKind, EmailPolicy],
    queues: Sequence[str],
    *,
    sandboxed: bool = True,
) -> list[Worker]:
    by_queue = {p.task_queue: p for p in policies.values()}
    workers = []
    for queue in queues:
        if queue == QUIZ_ATTEMPTS.task_queue:
            workers.append(build_quiz_worker(client, deps, sandboxed=sandboxed))
            continue
        policy, own = by_queue[queue], deps.queues[queue]
        activities: list[Any] = [
            own.codes.issue_code,
            own.codes.create_delivery,
            own.codes.settle_delivery,
            own.email.send_email,
            # Older runs in flight call these (docs/operations.md, "Upgrading").
            own.codes.mark_delivery,
            own.email.send_code,
            own.email.send_notification,
            # The learning flows' (a plan read when a workflow wakes).
            own.learning.load_enrollment_plan,
            # The broadcasts' (audience, pages, claims, sends, figures).
            own.announcements.begin_broadcast,
            own.announcements.announcement_state,
            own.announcements.recipients_page,
            own.announcements.claim_recipient,
            own.announcements.settle_recipient,
            own.announcements.finish_broadcast,
        ]
        workers.append(
            Worker(
                client,
                task_queue=queue,
                workflows=list(ALL_WORKFLOWS),
                activities=activities,
                max_task_queue_activities_per_second=policy.rate_per_second,
                max_concurrent_activities=200,
                # First send attempts run as local activities (workflows.emails); each
                # holds its workflow task, so the 100 below bound how many wait here.
                max_concurrent_local_activities=200,
                max_concurrent_workflow_tasks=100,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                workflow_runner=workflow_runner(sandboxed=sandboxed),
            )
        )
    return workers


# A killed worker's sticky queue is given up this soon (the server falls back at once
# when that queue had no poller for 10 s): a deadline's task waits at most this long
# for a worker that is gone.
QUIZ_STICKY_TIMEOUT = timedelta(seconds=1)


def build_quiz_worker(client: Client, deps: WorkerDeps, *, sandboxed: bool = True) -> Worker:
    """Timed quiz attempts.  A workflow cache: the close is a local activity, which
    the SDK cancels (and runs again, over and over under load) when its run is evicted
    in the middle of the task, as a worker without a cache does after every task; the
    sticky queue this brings is given up after ``QUIZ_STICKY_TIMEOUT``."""
    return Worker(
        client,
        task_queue=QUIZ_ATTEMPTS.task_queue,
        workflows=list(QUIZ_WORKFLOWS),
        activities=[deps.quizzes.close_attempt],
        max_cached_workflows=1000,
        sticky_queue_schedule_to_start_timeout=QUIZ_STICKY_TIMEOUT,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
            maximum=QUIZ_ATTEMPTS.workflow_task_pollers
        ),
        max_concurrent_activities=50,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        workflow_runner=workflow_runner(sandboxed=sandboxed),
    )


async def run_workers(settings: Settings, client: Client, queues: Sequence[str]) -> None:
    """Run until SIGINT/SIGTERM, then let in-flight sends finish."""
    policies = resolve_email_policies(settings.email_rate_limits)
    deps = WorkerDeps.build(settings, policies)
    await deps.pacer.ensure_rows()
    workers = build_workers(client, deps, policies, queues, sandboxed=settings.workflow_sandbox)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling %s", ", ".join(f"{q} ({by_rate(policies, q)})" for q in queues))
    freeze_startup_objects()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("worker stopping: finishing in-flight tasks")
        stopping.cancel()
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await deps.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures and not stop.is_set():
        raise failures[0]


def by_rate(policies: dict[EmailKind, EmailPolicy], queue: str) -> str:
    rate = next((p.rate_per_second for p in policies.values() if p.task_queue == queue), None)
    return "no limit" if rate is None else f"{rate}/s"
