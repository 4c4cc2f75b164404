"""A one-off notification email of a run begun before every email had a delivery record.

New notifications run as ``SendEmailWorkflow``; this type stays registered, unchanged in
its commands, so that runs in flight during an upgrade finish (docs/operations.md).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.code_lifecycle import send_email_activity, set_delivery_state, tag_workflow
from workflows.inputs import NotificationInput, SendNotificationInput
from workflows.names import ActivityName, WorkflowName


@workflow.defn(name=WorkflowName.NOTIFICATION)
class NotificationWorkflow:
    @workflow.run
    async def run(self, notice: NotificationInput) -> str:
        tag_workflow("notification", notice.user_id)
        set_delivery_state("sending")
        try:
            await send_email_activity(
                notice.email,
                ActivityName.SEND_NOTIFICATION,
                SendNotificationInput(notice.user_id, notice.template, notice.email.kind),
            )
            delivered = True
        except ActivityError:
            workflow.logger.warning("notification %s could not be delivered", notice.template)
            delivered = False
        set_delivery_state("delivered" if delivered else "failed")
        return "delivered" if delivered else "failed"
