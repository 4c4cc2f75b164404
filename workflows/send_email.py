"""One email of any declared type: write its delivery record, send it, done.

Started by the API (``FlowStarter.send_email``) or as a child of another workflow
(``workflows.emails.send_email``), on the email's own queue.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.emails import LOCAL_ACTIVITY_TIMEOUT, deliver
from workflows.inputs import CreateDeliveryInput, SendEmailInput
from workflows.names import ActivityName, WorkflowName
from workflows.state import set_delivery_state


@workflow.defn(name=WorkflowName.SEND_EMAIL)
class SendEmailWorkflow:
    @workflow.run
    async def run(self, request: SendEmailInput) -> str:
        delivery_id = request.delivery_id
        if delivery_id is None:
            # Deterministic (replays give the same id), so a retried activity finds
            # the record it wrote instead of writing a second one.
            delivery_id = str(workflow.uuid4())
            created: bool = await workflow.execute_local_activity(
                ActivityName.CREATE_DELIVERY,
                CreateDeliveryInput(
                    delivery_id,
                    request.email_type,
                    request.user_id,
                    workflow.info().workflow_id,
                    request.context,
                ),
                result_type=bool,
                start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
            )
            if not created:
                set_delivery_state("skipped")
                return "skipped"  # the user is gone
        set_delivery_state("sending")
        outcome = await deliver(
            request.route, delivery_id, on_retry=lambda: set_delivery_state("retrying")
        )
        set_delivery_state(outcome)
        return outcome
