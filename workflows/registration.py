"""Registration: emailed code -> verification -> (optional) admin approval -> approval email."""

from __future__ import annotations

from temporalio import workflow

from authflow import emails
from workflows.code_lifecycle import CodeFlowWorkflow, send_notice, tag_workflow
from workflows.inputs import CodeFlowInput, VerifiedSignal
from workflows.names import QueryName, SignalName, WorkflowName


@workflow.defn(name=WorkflowName.REGISTRATION)
class RegistrationWorkflow(CodeFlowWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._approved = False
        self._phase = "verifying"

    @workflow.run
    async def run(self, flow: CodeFlowInput) -> str:
        tag_workflow("register", flow.user_id, flow)
        codes = self.start_codes(flow)
        if not await codes.run_until_verified():
            self._phase = "expired"
            return "expired"
        if codes.verified is not None and codes.verified.needs_approval:
            # Durable: survives worker and server restarts; deleting the user cancels it.
            self._phase = "waiting_for_approval"
            await workflow.wait_condition(lambda: self._approved)
            await send_notice(
                flow.notification_email,
                flow.user_id,
                emails.ACCOUNT_APPROVED,
                key=str(workflow.uuid4()),  # deterministic: replays give the same
            )
        self._phase = "done"
        return "verified"

    @workflow.signal(name=SignalName.APPROVED)
    def approved(self) -> None:
        self._approved = True
        # An approval is also proof of verification: if the "verified" signal was lost
        # (the API could not reach Temporal), move on to the approval branch anyway.
        if self.codes is not None and self.codes.verified is None:
            self.codes.mark_verified(VerifiedSignal(needs_approval=True))

    @workflow.query(name=QueryName.PHASE)
    def phase(self) -> str:
        return self._phase
