"""One send attempt run again on a record its earlier attempt delivered.

A first attempt is a local activity: a worker that stops or dies after the provider's
answer, before its workflow learned the result, leaves the workflow to run the attempt
again.  That attempt must report what happened and send nothing.
"""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.testing import ActivityEnvironment

from authflow.policies import DeliveryState
from tests.faults.support import deliveries, messages_to, settled_deliveries
from tests.stack import Stack
from workflows.inputs import DeliveryOutcome, DeliveryRef

pytestmark = pytest.mark.e2e

QUEUE = "email-register"


async def test_an_attempt_on_a_delivered_record_reports_it_and_sends_nothing(
    stack: Stack,
) -> None:
    email = stack.new_email("again")
    mark = stack.sink.last_id
    assert (await stack.register(email)).status_code == 202
    await stack.wait_for_code(email, after_id=mark)
    (record,) = (await settled_deliveries(stack, [email]))[email]
    assert record.state == DeliveryState.DELIVERED

    assert stack.workers.deps is not None
    send = stack.workers.deps.queues[QUEUE].email.send_email
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, task_queue=QUEUE, is_local=True)
    outcome = await env.run(send, DeliveryRef(record.id))

    assert outcome == DeliveryOutcome("delivered")
    assert len(messages_to(stack, email, mark)) == 1
    (again,) = (await deliveries(stack, [email]))[email]
    assert (again.state, again.attempts) == (record.state, record.attempts)
