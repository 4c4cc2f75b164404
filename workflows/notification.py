"""A one-off notification email (password changed, ...), retried for up to an hour."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.code_lifecycle import send_notification, set_delivery_state, tag_workflow
    from workflows.inputs import NotificationInput


@workflow.defn(name="NotificationWorkflow")
class NotificationWorkflow:
    @workflow.run
    async def run(self, notice: NotificationInput) -> str:
        tag_workflow("notification", notice.user_id)
        set_delivery_state("sending")
        delivered = await send_notification(notice.email, notice.user_id, notice.template)
        set_delivery_state("delivered" if delivered else "failed")
        return "delivered" if delivered else "failed"
