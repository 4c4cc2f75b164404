"""Password reset: emailed code -> the API verifies it and sets the password -> notice."""

from __future__ import annotations

from temporalio import workflow

from authflow import emails
from workflows.code_lifecycle import CodeFlowWorkflow, send_notice, tag_workflow
from workflows.inputs import CodeFlowInput
from workflows.names import WorkflowName


@workflow.defn(name=WorkflowName.PASSWORD_RESET)
class PasswordResetWorkflow(CodeFlowWorkflow):
    @workflow.run
    async def run(self, flow: CodeFlowInput) -> str:
        tag_workflow("password_reset", flow.user_id, flow)
        codes = self.start_codes(flow)
        if not await codes.run_until_verified():
            return "expired"
        await send_notice(
            flow.notification_email,
            flow.user_id,
            emails.PASSWORD_RESET_DONE,
            key=str(workflow.uuid4()),  # deterministic: replays give the same
        )
        return "reset"
