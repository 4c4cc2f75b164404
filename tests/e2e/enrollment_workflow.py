"""A learning feature's workflow that emails its learner (the workflow-side seam)."""

from temporalio import workflow

from tests.e2e.course_emails import COURSE_WELCOME
from workflows.emails import send_email


@workflow.defn(name="TestEnrollmentWorkflow")
class EnrollmentWorkflow:
    @workflow.run
    async def run(self, user_id: str) -> str | None:
        return await send_email(
            COURSE_WELCOME, user_id, {"course_title": "Temporal 101"}, key="enrolled"
        )
