"""Password reset: emailed code -> the API verifies it and sets the password -> notice."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.code_lifecycle import CodeFlowWorkflow, send_notification, tag_workflow
    from workflows.inputs import CodeFlowInput


@workflow.defn(name="PasswordResetWorkflow")
class PasswordResetWorkflow(CodeFlowWorkflow):
    @workflow.run
    async def run(self, flow: CodeFlowInput) -> str:
        tag_workflow("password_reset", flow.user_id, flow)
        codes = self.start_codes(flow)
        if not await codes.run_until_verified():
            return "expired"
        await send_notification(flow.notification_email, flow.user_id, "password_reset")
        return "reset"
