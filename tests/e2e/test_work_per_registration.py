"""The work one registration causes, counted rather than timed, and pinned.

CPU figures taken on a shared machine say little; what a registration asks of each part
does not change with the load: workflow tasks and history events (each a write and, for
search attributes, a visibility write on the Temporal server), activity tasks, SQL
statements and transactions of the API per request and of the worker per send, and the
API's calls to Temporal.  One registration (register -> code email -> verify) is run
through the real chain and each of these is counted; the table, how it was counted and
what each cut traded are in docs/benchmarks.md ("Work per registration").  A change that
adds work fails here, and has to say why in that table.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from sqlalchemy import event
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from api.flows import code_workflow_id
from tests.stack import Stack, eventually
from workflows import search_attributes as sa

pytestmark = pytest.mark.e2e

# The request of this test a statement or a Temporal call belongs to (its label), also
# in the tasks the request leaves behind (its outbox dispatch copies the context).
_REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("request", default=None)
_TAG = "x-test-count-work"

# What one registration costs (docs/benchmarks.md, "Work per registration").
HISTORY = {
    "events": 15,
    "workflow tasks": 2,
    # The send: its first attempt a local activity (``workflows.emails``).
    "activity tasks": 0,
    "local activities": 1,
    "timers": 1,
    "patch markers": 1,
    # TemporalChangeVersion (written by the SDK with the patch marker), "delivered"
    "search-attribute upserts": 2,
    "signals": 1,
    "child workflows": 0,
}
# (statements, transactions), the same on both databases.  A request's count includes
# the deletion of its outbox entry after the answer (batched with other requests' in a
# spike: one statement and transaction for many).
API_SQL = {"register": (7, 2), "verify": (8, 2)}
# PostgreSQL: one more for the release's short lock wait (``activities.pacer``).
SEND_SQL = {"sqlite": (7, 3), "postgresql": (8, 3)}
# The API's calls to Temporal besides its cached health probe ("check").
API_RPCS = {
    "register": {"start_workflow_execution": 1},
    "verify": {"signal_workflow_execution": 1},
}


class WorkCounter:
    """SQL statements and transactions per label (an API request of this test, or
    ``send`` for the worker's activities of ``workflow_id``), and the API's RPCs."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.statements: collections.Counter[str] = collections.Counter()
        self.texts: list[str] = []  # what was counted, for a failure's message
        self.transactions: collections.Counter[str] = collections.Counter()
        self.rpcs: MutableMapping[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )

    def label(self) -> str | None:
        request = _REQUEST.get()
        if request is not None:
            return request
        if activity.in_activity() and activity.info().workflow_id == self.workflow_id:
            return "send"
        return None

    def on_statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        label = self.label()
        if label is not None:
            self.statements[label] += 1
            self.texts.append(f"{label}: {' '.join(statement.split())[:100]}")

    def on_begin(self, *_: Any) -> None:
        label = self.label()
        if label is not None:
            self.transactions[label] += 1

    def sql(self, label: str) -> tuple[int, int]:
        return self.statements[label], self.transactions[label]


@contextlib.asynccontextmanager
async def counting(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, workflow_id: str
) -> AsyncIterator[WorkCounter]:
    counter = WorkCounter(workflow_id)
    app: Any = stack.app
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    inner = app.middleware_stack

    async def labelled(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        label = headers.get(_TAG.encode())
        token = _REQUEST.set(label.decode() if label else None)
        try:
            await inner(scope, receive, send)
        finally:
            _REQUEST.reset(token)

    monkeypatch.setattr(app, "middleware_stack", labelled)

    service = stack.client.service_client
    rpc_call: Callable[..., Awaitable[Any]] = service._rpc_call

    async def counted_rpc(rpc: str, *args: Any, **kwargs: Any) -> Any:
        label = _REQUEST.get()
        if label is not None:
            counter.rpcs[label][rpc] += 1
        return await rpc_call(rpc, *args, **kwargs)

    monkeypatch.setattr(service, "_rpc_call", counted_rpc)

    deps = stack.workers.deps
    assert deps is not None
    databases = [stack.app.state.services.db, deps.pacer_db, deps.quiz_db]
    databases += [queue.db for queue in deps.queues.values()]
    engines = {id(db.engine.sync_engine): db.engine.sync_engine for db in databases}
    listeners = [("before_cursor_execute", counter.on_statement), ("begin", counter.on_begin)]
    for engine in engines.values():
        for name, fn in listeners:
            event.listen(engine, name, fn)
    try:
        yield counter
    finally:
        for engine in engines.values():
            for name, fn in listeners:
                event.remove(engine, name, fn)


def history_counts(history: WorkflowHistory) -> dict[str, int]:
    types = collections.Counter(e.event_type for e in history.events)
    markers = collections.Counter(
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )
    return {
        "events": len(history.events),
        "workflow tasks": types[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        "activity tasks": types[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        "local activities": markers["core_local_activity"],
        "timers": types[EventType.EVENT_TYPE_TIMER_STARTED],
        "patch markers": markers["core_patch"],
        "search-attribute upserts": types[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        "signals": types[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        "child workflows": types[EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED],
    }


async def test_one_registration_costs_no_more_work_than_counted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = stack.new_email("counted")
    password = f"pw-{uuid.uuid4().hex}"
    stack.remember(password)
    mark = stack.sink.last_id
    # The user id (and so the workflow id) is known only from the answer: count every
    # activity of this test's registration by the id, set as soon as it is known.
    async with counting(stack, monkeypatch, workflow_id="") as counter:
        response = await stack.http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password},
            headers={_TAG: "register"},
        )
        assert response.status_code == 202, response.text
        workflow_id = code_workflow_id("register", response.json()["user_id"])
        counter.workflow_id = workflow_id
        code = await stack.wait_for_code(email, after_id=mark)
        handle = stack.client.get_workflow_handle(workflow_id)

        async def shows_delivered() -> bool:
            described = await handle.describe()
            return described.typed_search_attributes.get(sa.DELIVERY_STATE) == "delivered"

        # A user reads the code after the worker recorded its delivery (a verification
        # that races the record costs one workflow task fewer: not the case to pin).
        await eventually(shows_delivered)
        verified = await stack.http.post(
            "/api/v1/auth/register/verify",
            json={"email": email, "otp": code},
            headers={_TAG: "verify"},
        )
        assert verified.status_code == 200, verified.text
        assert await handle.result() == "verified"
        await stack.app.state.services.outbox.drain()  # the answers' dispatches are done
        history = await handle.fetch_history()

    counts = history_counts(history)
    rpcs = {label: dict(calls) for label, calls in counter.rpcs.items()}
    probes = sum(calls.pop("check", 0) for calls in rpcs.values())
    report = {
        "history": counts,
        "api sql (statements, transactions)": {
            label: counter.sql(label) for label in ("register", "verify")
        },
        "send sql (statements, transactions)": counter.sql("send"),
        "api rpcs": rpcs,
        "statements": counter.texts,
    }
    # The counts are of this registration's work (not vacuous).
    assert counter.sql("send")[0] > 0 and counter.sql("register")[0] > 0, report
    assert counts == HISTORY, report
    assert rpcs == API_RPCS and probes <= 1, report
    for label in ("register", "verify"):
        assert _at_most(counter.sql(label), API_SQL[label]), report
    assert _at_most(counter.sql("send"), SEND_SQL[stack.backend]), report


def _at_most(counted: tuple[int, int], pinned: tuple[int, int]) -> bool:
    return all(n <= limit for n, limit in zip(counted, pinned, strict=True))
