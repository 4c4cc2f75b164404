"""Starting and signalling workflows from the API, with deterministic workflow ids.

A double submit or a retried request finds the same workflow id: a running flow is
reused (or signalled), a finished one may be started again.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from authflow.errors import ServiceUnavailable
from authflow.policies import (
    PURPOSE_EMAIL_KIND,
    EmailKind,
    EmailPolicy,
    OtpPurpose,
    OtpRules,
)
from workflows import search_attributes as sa
from workflows.inputs import (
    CodeFlowInput,
    EmailRoute,
    IssuedCode,
    NotificationInput,
    RetrySpec,
    VerifiedSignal,
)
from workflows.notification import NotificationWorkflow
from workflows.password_reset import PasswordResetWorkflow
from workflows.registration import RegistrationWorkflow

_FLOW_TYPES: dict[OtpPurpose, Any] = {
    OtpPurpose.REGISTER: RegistrationWorkflow,
    OtpPurpose.PASSWORD_RESET: PasswordResetWorkflow,
}
_ID_PREFIX = {OtpPurpose.REGISTER: "register", OtpPurpose.PASSWORD_RESET: "password-reset"}


def code_workflow_id(purpose: OtpPurpose | str, user_id: str) -> str:
    return f"{_ID_PREFIX[OtpPurpose(purpose)]}-{user_id}"


class FlowStarter:
    def __init__(
        self, client: Client, policies: dict[EmailKind, EmailPolicy], rules: OtpRules
    ) -> None:
        self._client = client
        self._policies = policies
        self._rules = rules

    def route(self, kind: EmailKind) -> EmailRoute:
        policy = self._policies[kind]
        retry = policy.retry
        return EmailRoute(
            kind=kind.value,
            task_queue=policy.task_queue,
            retry=RetrySpec(
                initial_interval_seconds=retry.initial_interval_seconds,
                backoff_coefficient=retry.backoff_coefficient,
                maximum_interval_seconds=retry.maximum_interval_seconds,
                schedule_to_close_seconds=retry.schedule_to_close_seconds(
                    self._rules.ttl_seconds, policy.attempt_timeout_seconds
                ),
                attempt_timeout_seconds=policy.attempt_timeout_seconds,
            ),
        )

    def _code_flow_input(
        self, purpose: OtpPurpose, user_id: str, first_code: IssuedCode | None
    ) -> CodeFlowInput:
        return CodeFlowInput(
            user_id=user_id,
            purpose=purpose.value,
            code_length=self._rules.length,
            code_ttl_seconds=self._rules.ttl_seconds,
            code_email=self.route(PURPOSE_EMAIL_KIND[purpose]),
            notification_email=self.route(EmailKind.NOTIFICATION),
            first_code=first_code,
        )

    async def start_code_flow(
        self,
        purpose: OtpPurpose,
        user_id: str,
        *,
        resend: bool,
        first_code: IssuedCode | None = None,
        replace: bool = False,
    ) -> str:
        """Start the flow of this user and purpose, or reuse the running one.

        ``resend`` also asks a running flow for a fresh code (signal-with-start: one
        atomic call whether or not the flow is running, so a code is never lost between
        "is it running?" and "start it").  ``first_code``: a code already issued for this
        flow (a new account's), sent first instead of issuing one.  ``replace``: a
        running flow is terminated and a new one sends ``first_code`` (a repeated
        registration of a pending address: its code carries its own password).
        """
        workflow_id = code_workflow_id(purpose, user_id)
        flow = _FLOW_TYPES[purpose]
        kind = PURPOSE_EMAIL_KIND[purpose]
        options: dict[str, Any] = {
            "id": workflow_id,
            "task_queue": self._policies[kind].task_queue,
            "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            "search_attributes": _attributes(kind.value, user_id),
        }
        if replace:
            options["id_conflict_policy"] = WorkflowIDConflictPolicy.TERMINATE_EXISTING
        elif resend:
            options["start_signal"] = "resend"
        else:
            options["id_conflict_policy"] = WorkflowIDConflictPolicy.USE_EXISTING
        await self._call(
            self._client.start_workflow(
                flow.run, self._code_flow_input(purpose, user_id, first_code), **options
            )
        )
        return workflow_id

    async def signal_verified(
        self, purpose: OtpPurpose, user_id: str, needs_approval: bool
    ) -> bool:
        return await self._signal(
            code_workflow_id(purpose, user_id), "verified", VerifiedSignal(needs_approval)
        )

    async def signal_approved(self, user_id: str) -> bool:
        """False when no registration flow waits (then the caller sends the email itself)."""
        return await self._signal(code_workflow_id(OtpPurpose.REGISTER, user_id), "approved", None)

    async def notify(self, user_id: str, template: str, *, key: str | None = None) -> str:
        """Start a notification workflow; the same ``key`` never sends twice."""
        workflow_id = f"notify-{template}-{user_id}-{key or uuid.uuid4().hex}"
        route = self.route(EmailKind.NOTIFICATION)
        await self._call(
            self._client.start_workflow(
                NotificationWorkflow.run,
                NotificationInput(user_id, template, route),
                id=workflow_id,
                task_queue=route.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=_attributes(EmailKind.NOTIFICATION.value, user_id),
            )
        )
        return workflow_id

    async def cancel_user_flows(self, user_id: str) -> None:
        """Cancel every running flow of a deleted user (a pending approval wait included)."""
        for purpose in _FLOW_TYPES:
            handle = self._client.get_workflow_handle(code_workflow_id(purpose, user_id))
            await self._ignore_gone(handle.cancel())

    async def _signal(self, workflow_id: str, signal: str, arg: Any) -> bool:
        handle: WorkflowHandle[Any, Any] = self._client.get_workflow_handle(workflow_id)
        coro = handle.signal(signal) if arg is None else handle.signal(signal, arg)
        return await self._ignore_gone(coro)

    @staticmethod
    async def _ignore_gone(coro: Any) -> bool:
        """True if the call reached a running workflow, False if there was none."""
        try:
            await coro
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise ServiceUnavailable("The workflow service is unavailable.") from exc
            return False
        return True

    @staticmethod
    async def _call(coro: Any) -> Any:
        try:
            return await coro
        except RPCError as exc:
            raise ServiceUnavailable("The workflow service is unavailable; try again.") from exc


def _attributes(kind: str, user_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.KIND, kind),
            SearchAttributePair(sa.USER_ID, user_id),
            SearchAttributePair(sa.DELIVERY_STATE, "pending"),
        ]
    )
