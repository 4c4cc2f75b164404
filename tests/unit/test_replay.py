"""Recorded workflow histories replay against today's workflow code.

Running workflows live for days (an approval wait has no end): a change to workflow code
that makes it issue different commands for an old history breaks them in production.
The Replayer re-runs every recorded history and fails on any such non-determinism.

The histories in ``tests/data/histories`` come from real runs through the whole chain
(API, Temporal dev server, workers, SMTP sink, database), encrypted by the payload codec
with the fixed test key below.  Histories of older workflow code are kept (runs begun
before a change must still replay): the plain names were recorded before the one email
pipeline, the ``pipeline_`` ones after it, the ``lean_`` ones since the
"lean-code-flows" marker, the ``local_send_`` ones since ``workflows.versions.CURRENT``
(a send's first attempt a local activity).  Record a new generation (after an intended, versioned
change) under a new prefix, keeping the older files (and only the files of the
workflows that changed)::

    python -m tests.unit.test_replay --record --out /tmp/h --prefix local_send_
    python -m tests.unit.test_replay --record --out /tmp/h --prefix local_send_retrying_ --only retries
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from authflow.settings import Settings
from authflow.temporal import data_converter
from tests.secret import TEST_SECRET
from workers.main import workflow_runner
from workflows.catalog import ALL_WORKFLOWS, QUIZ_WORKFLOWS
from workflows.inputs import CodeFlowInput
from workflows.registration import RegistrationWorkflow

if TYPE_CHECKING:  # only the recorder uses the stack, and it imports the stack lazily
    from tests.stack import Stack

HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories"
WORKFLOWS = [*ALL_WORKFLOWS, *QUIZ_WORKFLOWS]
# A fixed key, for these test histories only: the Replayer must decrypt what was recorded.
REPLAY_CODEC_KEYS = "replay-1:" + base64.b64encode(bytes(range(32))).decode()
# What the recordings must cover (file stem -> workflow type).
_BEFORE_PIPELINE = {
    "registration_verified": "RegistrationWorkflow",
    "registration_resend": "RegistrationWorkflow",
    "registration_retried": "RegistrationWorkflow",
    "registration_failed_then_resent": "RegistrationWorkflow",
    "registration_approval": "RegistrationWorkflow",
    "registration_waiting_for_approval": "RegistrationWorkflow",
    "registration_expired": "RegistrationWorkflow",
    "password_reset": "PasswordResetWorkflow",
    "notification_delivered": "NotificationWorkflow",
    "notification_failed": "NotificationWorkflow",
}
# Timed quiz attempts (recorded apart: ``--only quizzes``).
_QUIZZES = {
    "quiz_attempt_deadline": "QuizAttemptWorkflow",
    # Recorded before the result email (and its patch marker): still replays.
    "quiz_attempt_deadline_before_email": "QuizAttemptWorkflow",
    "quiz_attempt_submitted": "QuizAttemptWorkflow",
    # Since ``LOCAL_CLOSE_PATCH`` (the close a local activity; ``--only quizzes --prefix
    # local_``, keeping only the deadline's file: a submitted run did not change).
    "local_quiz_attempt_deadline": "QuizAttemptWorkflow",
}
# Since the one email pipeline, notifications are SendEmailWorkflow runs.
_PIPELINE = {
    **{k: v for k, v in _BEFORE_PIPELINE.items() if v != "NotificationWorkflow"},
    "notification_delivered": "SendEmailWorkflow",
    "notification_failed": "SendEmailWorkflow",
}
# Since a send's first attempt runs apart (``workflows.emails.SHOWS_RETRYING``): emails
# that were retried (recorded apart: ``--only retries --prefix retrying_``).
_RETRIES = {
    "retrying_registration_retried": "RegistrationWorkflow",
    "retrying_notification_retried": "SendEmailWorkflow",
}
# Since ``workflows.versions.CURRENT`` (one patch marker per new run, no "used" upsert):
# the code flows (``run_all``, their ``lean_`` files) and the retried emails (``--only
# retries --prefix lean_retrying_``: a SendEmailWorkflow takes "shows retrying" on it).
_LEAN = {
    **{f"lean_{k}": v for k, v in _BEFORE_PIPELINE.items() if v != "NotificationWorkflow"},
    **{f"lean_{k}": v for k, v in _RETRIES.items()},
}
# Since ``workflows.versions.CURRENT`` became "local-first-send" (a send's first attempt
# a local activity): the code flows and notifications (``run_all``, their
# ``local_send_`` files) and the retried emails (``--only retries --prefix
# local_send_retrying_``: the first attempt local, the retries activities).
_LOCAL_SEND = {
    **{f"local_send_{k}": v for k, v in _PIPELINE.items()},
    **{f"local_send_{k}": v for k, v in _RETRIES.items()},
}
SCENARIOS = (
    _BEFORE_PIPELINE
    | {f"pipeline_{k}": v for k, v in _PIPELINE.items()}
    | _QUIZZES
    | _RETRIES
    | _LEAN
    | _LOCAL_SEND
)


def replay_settings(**values: Any) -> Settings:
    return Settings(
        environment="test", jwt_secret=TEST_SECRET, codec_keys=REPLAY_CODEC_KEYS, **values
    )


def load_histories() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted(HISTORIES.glob("*.json"))
    ]


def recorded(stem: str) -> WorkflowHistory:
    return next(h for h in load_histories() if h.workflow_id == stem)


def marker_names(history: WorkflowHistory) -> list[str]:
    return [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]


def activity_tasks(history: WorkflowHistory) -> list[str]:
    """The activity types the run scheduled on the server, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


def _delivery_states(history: WorkflowHistory) -> set[str]:
    """The values the run upserted to ``AuthflowDeliveryState`` (JSON-encoded)."""
    return {
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields[
            "AuthflowDeliveryState"
        ].data.decode()
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
        and "AuthflowDeliveryState"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    }


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return str(started.workflow_type.name)


def test_every_workflow_type_and_path_is_recorded() -> None:
    recorded = {h.workflow_id: workflow_type(h) for h in load_histories()}
    assert recorded == SCENARIOS, "re-record: python -m tests.unit.test_replay --record"


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "as-workers-run"])
async def test_recorded_histories_replay_without_nondeterminism(sandboxed: bool) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(replay_settings()),
        workflow_runner=workflow_runner(sandboxed=sandboxed),
    )
    results = await replayer.replay_workflows(
        _each(load_histories()), raise_on_replay_failure=False
    )
    failures = {wid: repr(err) for wid, err in results.replay_failures.items()}
    assert not failures, f"workflow code no longer replays its histories: {failures}"


async def _each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


@workflow.defn(name="RegistrationWorkflow", sandboxed=False)
class _RegistrationThatWaitsFirst(RegistrationWorkflow):
    """An "innocent" change: wait a second before issuing the code."""

    @workflow.run
    async def run(self, flow: CodeFlowInput) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(flow)


async def test_a_breaking_change_fails_the_replay() -> None:
    """The check above is not vacuous: a changed command sequence is caught."""
    history = next(h for h in load_histories() if h.workflow_id == "registration_verified")
    replayer = Replayer(
        workflows=[_RegistrationThatWaitsFirst],
        data_converter=data_converter(replay_settings()),
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)


def test_the_newer_histories_take_the_one_pipeline() -> None:
    """Both generations are covered: the ``pipeline_`` runs send through ``send_email``
    and start their notices as child ``SendEmailWorkflow`` runs; the older ones do not."""

    def commands(stem: str) -> tuple[set[str], set[str]]:
        history = next(h for h in load_histories() if h.workflow_id == stem)
        activities = {
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        }
        children = {
            e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name
            for e in history.events
            if e.HasField("start_child_workflow_execution_initiated_event_attributes")
        }
        return activities, children

    assert commands("pipeline_registration_approval") == ({"send_email"}, {"SendEmailWorkflow"})
    assert commands("registration_approval") == ({"send_code", "send_notification"}, set())
    assert commands("pipeline_notification_failed") == ({"send_email"}, set())


def test_the_lean_histories_record_one_patch_marker_and_no_used_state() -> None:
    """Runs since ``versions.CURRENT`` record its one marker where older runs recorded
    one per patch, and leave the delivery state at the email's ("used" is not upserted);
    the older generations keep theirs (and still replay, above)."""

    def markers_and_states(stem: str) -> tuple[list[str], set[str]]:
        history = recorded(stem)
        markers = marker_names(history)
        return [m for m in markers if m == "core_patch"], _delivery_states(history)

    assert markers_and_states("lean_registration_verified") == (["core_patch"], {'"delivered"'})
    assert markers_and_states("lean_registration_retried") == (
        ["core_patch"],
        {'"retrying"', '"delivered"'},
    )
    assert markers_and_states("pipeline_registration_verified") == (
        ["core_patch", "core_patch"],
        {'"delivered"', '"used"'},
    )


def test_the_local_close_history_has_no_activity_task_and_the_older_one_has() -> None:
    """Both ways of closing at the deadline are covered: runs since ``LOCAL_CLOSE_PATCH``
    grade in a local activity (its marker, no activity task), older runs in a
    server-scheduled activity (and replay on it, above)."""

    def close_of(stem: str) -> tuple[list[str], list[str]]:
        history = recorded(stem)
        return marker_names(history), activity_tasks(history)

    assert close_of("local_quiz_attempt_deadline") == (["core_patch", "core_local_activity"], [])
    assert close_of("quiz_attempt_deadline") == (["core_patch"], ["close_quiz_attempt"])
    assert close_of("quiz_attempt_deadline_before_email") == ([], ["close_quiz_attempt"])


def test_the_local_send_histories_send_first_in_a_local_activity() -> None:
    """Runs since "local-first-send" make an email's first attempt a local activity (its
    marker, no activity task), and its retries activities on the queue, as before (so a
    retried email still shows its attempts in the Web UI); the older runs' first attempt
    is an activity (and they replay on it, above)."""

    def sends_of(stem: str) -> tuple[list[str], list[str], set[str]]:
        history = recorded(stem)
        return marker_names(history), activity_tasks(history), _delivery_states(history)

    assert sends_of("local_send_registration_verified") == (
        ["core_patch", "core_local_activity"],
        [],
        {'"delivered"'},
    )
    assert sends_of("local_send_retrying_registration_retried") == (
        ["core_patch", "core_local_activity"],
        ["send_email"],
        {'"retrying"', '"delivered"'},
    )
    assert sends_of("lean_registration_verified") == (
        ["core_patch"],
        ["send_email"],
        {'"delivered"'},
    )


def test_histories_are_encrypted_with_the_test_key() -> None:
    """Checked in, the histories still hold no readable payload, not even an id."""
    encrypted = base64.b64encode(b"binary/encrypted").decode()
    for path in sorted(HISTORIES.glob("*.json")):
        assert _payload_encodings(json.loads(path.read_text())) == {encrypted}, path.name


def _payload_encodings(node: object, path: str = "") -> set[str]:
    """Base64 encodings of payloads outside search attributes and marker metadata."""
    if "searchAttributes" in path or path.endswith("markerRecordedEventAttributes/details"):
        return set()
    found: set[str] = set()
    if isinstance(node, dict):
        if "metadata" in node and "encoding" in node["metadata"]:
            found.add(node["metadata"]["encoding"])
        for key, value in node.items():
            found |= _payload_encodings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for item in node:
            found |= _payload_encodings(item, path)
    return found


# --------------------------------------------------------------------------- recording
# Not run by pytest: ``python -m tests.unit.test_replay --record`` drives real flows
# through a dedicated stack and writes one history per scenario.


async def record_histories(out: Path, prefix: str = "", only: str | None = None) -> None:
    from tests.faults.support import dedicated_stack
    from tests.stack import eventually

    out.mkdir(parents=True, exist_ok=True)
    ttl = 15
    with tempfile.TemporaryDirectory(prefix="authflow-record-") as tmp:
        async with dedicated_stack(
            Path(tmp), codec_keys=REPLAY_CODEC_KEYS, otp_ttl_seconds=ttl
        ) as (stack, _):
            recorder = _Recorder(stack, out, eventually, prefix)
            if only == "quizzes":
                await recorder.quizzes()
            elif only == "retries":
                await recorder.retries()
            else:
                await recorder.run_all(ttl)


class _Recorder:
    def __init__(
        self,
        stack: Stack,
        out: Path,
        eventually: Callable[..., Awaitable[Any]],
        prefix: str = "",
    ) -> None:
        self.prefix = prefix
        self.stack = stack
        self.out = out
        self.eventually = eventually
        self.admin: dict[str, str] = {}
        self.seen_notifications: set[str] = set()

    async def run_all(self, ttl: int) -> None:
        self.admin = self.stack.bearer(await self.stack.admin_tokens())
        email, password = await self.verified()
        await self.resend()
        await self.retried()
        await self.failed_then_resent()
        await self.approval()
        await self.expired(ttl)
        await self.password_reset(email)
        await self.notifications(email, password)
        await self.quizzes()

    # -- helpers ----------------------------------------------------------------------
    async def save(self, name: str, workflow_id: str, *, wait: bool = True) -> None:
        handle = self.stack.client.get_workflow_handle(workflow_id)

        async def started() -> bool:
            # Some runs are started after the API's answer (a quiz attempt's, from the
            # outbox): wait for the run before asking for its result.
            try:
                await handle.describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                return False
            return True

        await self.eventually(started, timeout=30)
        if wait:
            await asyncio.wait_for(handle.result(), timeout=120)
        history = await handle.fetch_history()
        data = json.loads(history.to_json())
        (self.out / f"{self.prefix}{name}.json").write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n"
        )
        print(f"recorded {name}: {len(history.events)} events")

    async def register(self, email: str | None = None) -> tuple[str, str, str]:
        email = email or self.stack.new_email("replay")
        response = await self.stack.register(email)
        assert response.status_code == 202, response.text
        user_id = response.json()["user_id"]
        return email, user_id, f"register-{user_id}"

    async def verify(self, email: str, code: str) -> str:
        r = await self.stack.http.post(
            "/api/v1/auth/register/verify", json={"email": email, "otp": code}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    async def search_state(self, workflow_id: str) -> str | None:
        from temporalio.service import RPCError, RPCStatusCode

        from workflows import search_attributes as sa

        try:
            described = await self.stack.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:  # not started yet: the API starts it after its answer
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return described.typed_search_attributes.get(sa.DELIVERY_STATE)

    # -- scenarios ----------------------------------------------------------------------
    async def verified(self) -> tuple[str, str]:
        email = self.stack.new_email("replay")
        password = f"pw-{secrets.token_hex(8)}"
        mark = self.stack.sink.last_id
        response = await self.stack.register(email, password)
        user_id = response.json()["user_id"]
        await self.verify(email, await self.stack.wait_for_code(email, after_id=mark))
        await self.save("registration_verified", f"register-{user_id}")
        return email, password

    async def resend(self) -> None:
        mark = self.stack.sink.last_id
        email, _, wid = await self.register()
        await self.stack.wait_for_code(email, after_id=mark)
        await asyncio.sleep(self.stack.settings.otp_resend_cooldown_seconds + 0.5)
        mark = self.stack.sink.last_id
        r = await self.stack.http.post("/api/v1/auth/register/resend-otp", json={"email": email})
        assert r.status_code == 202, r.text
        await self.verify(email, await self.stack.wait_for_code(email, after_id=mark))
        await self.save("registration_resend", wid)

    async def retried(self) -> None:
        sink = self.stack.sink
        mark = sink.last_id
        sink.faults.mode = "transient"
        try:
            email, _, wid = await self.register()

            async def retrying() -> bool:
                # The delivery record shows every retry (the workflow learns only the
                # outcome since the one pipeline).
                listed = await self.stack.http.get(
                    "/api/v1/admin/otp", params={"state": "retrying"}, headers=self.admin
                )
                return any(d["email"] == email for d in listed.json()["items"])

            await self.eventually(retrying, timeout=30)
        finally:
            sink.faults.reset()
        await self.verify(email, await self.stack.wait_for_code(email, after_id=mark))
        await self.save("registration_retried", wid)

    async def failed_then_resent(self) -> None:
        sink = self.stack.sink
        sink.faults.mode = "permanent"
        try:
            email, _, wid = await self.register()

            async def failed() -> bool:
                return await self.search_state(wid) == "failed"

            await self.eventually(failed, timeout=30)
        finally:
            sink.faults.reset()
        listed = await self.stack.http.get(
            "/api/v1/admin/otp", params={"state": "failed", "limit": 200}, headers=self.admin
        )
        delivery = next(d for d in listed.json()["items"] if d["email"] == email)
        mark = sink.last_id
        r = await self.stack.http.post(
            f"/api/v1/admin/otp/{delivery['id']}/resend", headers=self.admin
        )
        assert r.status_code == 202, r.text
        await self.verify(email, await self.stack.wait_for_code(email, after_id=mark))
        await self.save("registration_failed_then_resent", wid)

    async def approval(self) -> None:
        settings = self.stack.settings
        settings.require_approval = True  # the API reads it at verification time
        try:
            waiting = []
            for _ in range(2):
                mark = self.stack.sink.last_id
                email, user_id, wid = await self.register()
                code = await self.stack.wait_for_code(email, after_id=mark)
                assert await self.verify(email, code) == "pending_approval"
                handle = self.stack.client.get_workflow_handle(wid)

                async def waiting_for_approval(h: Any = handle) -> bool:
                    return bool(await h.query(RegistrationWorkflow.phase) == "waiting_for_approval")

                await self.eventually(waiting_for_approval, timeout=30)
                waiting.append((email, user_id, wid))
        finally:
            settings.require_approval = False
        # One stays waiting (a history that ends mid-wait), one is approved.
        await self.save("registration_waiting_for_approval", waiting[0][2], wait=False)
        email, user_id, wid = waiting[1]
        mark = self.stack.sink.last_id
        r = await self.stack.http.post(f"/api/v1/admin/users/{user_id}/approve", headers=self.admin)
        assert r.status_code == 200, r.text
        await self.stack.wait_for_mail(email, after_id=mark, subject="approved")
        await self.save("registration_approval", wid)

    async def expired(self, ttl: int) -> None:
        mark = self.stack.sink.last_id
        email, _, wid = await self.register()
        await self.stack.wait_for_code(email, after_id=mark)
        await asyncio.sleep(ttl)
        await self.save("registration_expired", wid)

    async def password_reset(self, email: str) -> None:
        mark = self.stack.sink.last_id
        r = await self.stack.http.post("/api/v1/auth/password/forgot", json={"email": email})
        assert r.status_code == 202, r.text
        code = await self.stack.wait_for_code(email, after_id=mark)
        r = await self.stack.http.post(
            "/api/v1/auth/password/reset",
            json={"email": email, "otp": code, "new_password": "replay reset passphrase"},
        )
        assert r.status_code == 204, r.text
        user_id = await self.user_id(email)
        await self.save("password_reset", f"password-reset-{user_id}")

    async def notifications(self, email: str, _old_password: str) -> None:
        user_id = await self.user_id(email)
        password = "replay reset passphrase"
        for name, mode in (("notification_delivered", "ok"), ("notification_failed", "permanent")):
            tokens = await self.stack.login(email, password)
            new_password = f"replay {name} passphrase"
            self.stack.sink.faults.mode = mode
            try:
                r = await self.stack.http.post(
                    "/api/v1/auth/password/change",
                    json={"current_password": password, "new_password": new_password},
                    headers=self.stack.bearer(tokens),
                )
                assert r.status_code == 204, r.text
                password = new_password
                wid = await self.newest_notification(user_id)
                await asyncio.wait_for(
                    self.stack.client.get_workflow_handle(wid).result(), timeout=120
                )
            finally:
                self.stack.sink.faults.reset()
            await self.save(name, wid)

    async def retries(self) -> None:
        self.admin = self.stack.bearer(await self.stack.admin_tokens())
        await self.retried()
        email, password = self.stack.new_email("replay"), f"pw-{secrets.token_hex(8)}"
        mark = self.stack.sink.last_id
        assert (await self.stack.register(email, password)).status_code == 202
        await self.verify(email, await self.stack.wait_for_code(email, after_id=mark))
        user_id = await self.user_id(email)
        tokens = await self.stack.login(email, password)
        self.stack.sink.faults.mode = "transient"
        try:
            r = await self.stack.http.post(
                "/api/v1/auth/password/change",
                json={"current_password": password, "new_password": "replay retried passphrase"},
                headers=self.stack.bearer(tokens),
            )
            assert r.status_code == 204, r.text
            wid = await self.newest_notification(user_id)

            async def retrying() -> bool:
                return await self.search_state(wid) == "retrying"

            await self.eventually(retrying, timeout=30)
        finally:
            self.stack.sink.faults.reset()
        await self.save("notification_retried", wid)

    async def quizzes(self) -> None:
        from tests.quiz_calls import ALL_RIGHT, quiz_body, quiz_course

        setup = await quiz_course(self.stack)
        r = await setup.put_quiz(quiz_body(time_limit_seconds=10))
        assert r.status_code == 200, r.text
        attempt = (await setup.start()).json()
        await setup.save(attempt["id"], ALL_RIGHT)
        await self.save("quiz_attempt_deadline", f"quiz-attempt-{attempt['id']}")
        other = await setup.add_learner()
        attempt = (await setup.start(other)).json()
        r = await setup.submit(attempt["id"], other)
        assert r.status_code == 200, r.text
        await self.save("quiz_attempt_submitted", f"quiz-attempt-{attempt['id']}")

    async def newest_notification(self, user_id: str) -> str:
        async def found() -> str | None:
            query = f"WorkflowType='SendEmailWorkflow' AND AuthflowUserId='{user_id}'"
            ids = [w.id async for w in self.stack.client.list_workflows(query)]
            # (The password reset's own notice is a SendEmailWorkflow of this user too.)
            fresh = [
                i
                for i in ids
                if i.startswith("email-password_changed-") and i not in self.seen_notifications
            ]
            return fresh[0] if fresh else None

        wid: str = await self.eventually(found, timeout=30)
        self.seen_notifications.add(wid)
        return wid

    async def user_id(self, email: str) -> str:
        from sqlalchemy import select

        from authflow.models import User

        async with self.stack.db.session() as session:
            return str(await session.scalar(select(User.id).where(User.email == email)))


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="record workflow histories for replay tests")
    parser.add_argument("--record", action="store_true", required=True)
    parser.add_argument("--out", type=Path, default=HISTORIES)
    parser.add_argument("--prefix", default="local_send_")
    parser.add_argument(
        "--only", choices=["quizzes", "retries"], help="record only these scenarios"
    )
    args = parser.parse_args(argv)
    asyncio.run(record_histories(args.out, args.prefix, args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
