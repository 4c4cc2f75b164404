"""Starting and signalling workflows from the API, with deterministic workflow ids.

Workflows are started and signalled by name (``workflows.names``) with their typed
input dataclasses: the API never imports workflow or activity code.  A double submit or
a retried request finds the same workflow id: a running flow is reused (or signalled),
a finished one may be started again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from authflow import emails
from authflow.announcements.states import broadcast_workflow_id
from authflow.commands import ControlBroadcast, StartBroadcast
from authflow.emails import EmailType
from authflow.errors import ServiceUnavailable
from authflow.policies import (
    PURPOSE_EMAIL_KIND,
    EmailKind,
    EmailPolicy,
    OtpPurpose,
    OtpRules,
)
from workflows import search_attributes as sa
from workflows.announcement_inputs import BroadcastInput, ControlSignal
from workflows.emails import email_route, email_search_attributes, email_workflow_id
from workflows.inputs import (
    CodeFlowInput,
    EmailRoute,
    IssuedCode,
    SendEmailInput,
    VerifiedSignal,
)
from workflows.names import SignalName, WorkflowName

_FLOW_TYPES: dict[OtpPurpose, WorkflowName] = {
    OtpPurpose.REGISTER: WorkflowName.REGISTRATION,
    OtpPurpose.PASSWORD_RESET: WorkflowName.PASSWORD_RESET,
}
# ``notify``'s names (the outbox's): the notices they send.
NOTICES: dict[str, EmailType] = {
    "password_changed": emails.PASSWORD_CHANGED,
    "password_reset": emails.PASSWORD_RESET_DONE,
    "account_approved": emails.ACCOUNT_APPROVED,
}


@dataclass(frozen=True)
class SendEmail:
    """The typed command "send email ``email`` to user ``user_id``", queued after a commit.

    ``context``: the template's values, ids and plain data only (no code, password or
    token: they would travel through Temporal).  ``key``: the same key never sends twice
    (an outbox entry's id, an enrollment id...).  ``course_id``: the course the email is
    about, if any (its workflow then carries ``AuthflowCourseId`` in the Web UI).
    """

    email: EmailType
    user_id: str
    key: str
    context: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    course_id: str | None = None


_ID_PREFIX = {OtpPurpose.REGISTER: "register", OtpPurpose.PASSWORD_RESET: "password-reset"}


BROADCAST_WORKFLOW = "BroadcastWorkflow"
BROADCAST_CONTROL = "control"


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
        """The route (queue, retries) of a kind whose emails carry no code: for the flows
        that send emails of their own (learning reminders, broadcasts)."""
        email = next(e for e in emails.declared() if e.kind == kind and e.code is None)
        return email_route(email)

    def code_route(self, purpose: OtpPurpose) -> EmailRoute:
        """A code email's route: retried while its code lives."""
        return email_route(emails.code_email(purpose), code_ttl_seconds=self._rules.ttl_seconds)

    def _code_flow_input(
        self, purpose: OtpPurpose, user_id: str, first_code: IssuedCode | None
    ) -> CodeFlowInput:
        return CodeFlowInput(
            user_id=user_id,
            purpose=purpose.value,
            code_length=self._rules.length,
            code_ttl_seconds=self._rules.ttl_seconds,
            code_email=self.code_route(purpose),
            notification_email=email_route(emails.ACCOUNT_APPROVED),
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
            options["start_signal"] = SignalName.RESEND
        else:
            options["id_conflict_policy"] = WorkflowIDConflictPolicy.USE_EXISTING
        await self._call(
            self._client.start_workflow(
                flow, self._code_flow_input(purpose, user_id, first_code), **options
            )
        )
        return workflow_id

    async def signal_verified(
        self, purpose: OtpPurpose, user_id: str, needs_approval: bool
    ) -> bool:
        return await self._signal(
            code_workflow_id(purpose, user_id), SignalName.VERIFIED, VerifiedSignal(needs_approval)
        )

    async def signal_approved(self, user_id: str) -> bool:
        """False when no registration flow waits (then the caller sends the email itself)."""
        return await self._signal(
            code_workflow_id(OtpPurpose.REGISTER, user_id), SignalName.APPROVED, None
        )

    async def notify(self, user_id: str, template: str, *, key: str | None = None) -> str:
        """Send one of the account notices by its outbox name (``NOTICES``); the same
        ``key`` never sends twice."""
        notice = NOTICES[template]
        return await self.send_email(SendEmail(notice, user_id, key or uuid.uuid4().hex))

    async def send_email(self, command: SendEmail) -> str:
        """Start the ``SendEmailWorkflow`` of one email (its delivery record is written
        by the workflow); returns its workflow id."""
        email = command.email
        route = email_route(email)
        workflow_id = email_workflow_id(email, command.user_id, command.key)
        await self._call(
            self._client.start_workflow(
                WorkflowName.SEND_EMAIL,
                SendEmailInput(email.name, command.user_id, route, dict(command.context)),
                id=workflow_id,
                task_queue=route.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=email_search_attributes(
                    route, command.user_id, course_id=command.course_id
                ),
            )
        )
        return workflow_id

    @property
    def client(self) -> Client:
        return self._client

    async def start_broadcast(self, command: StartBroadcast) -> None:
        """An announcement's broadcast (id ``announcement-<id>``, a re-send round's
        ``announcement-<id>-resend-<n>``: a retried start finds it).  A round starts as
        ``started``: the workflow code is the first send's, unchanged (no patch)."""
        attributes = [SearchAttributePair(sa.KIND, EmailKind.ANNOUNCEMENT.value)]
        if command.course_id:
            attributes.append(SearchAttributePair(sa.COURSE_ID, command.course_id))
        route = self.route(EmailKind.ANNOUNCEMENT)
        await self._call(
            self._client.start_workflow(
                BROADCAST_WORKFLOW,
                BroadcastInput(
                    announcement_id=command.announcement_id,
                    route=route,
                    send_at_epoch=command.send_at_epoch,
                    page_size=command.page_size,
                    started=command.resend_round > 0,
                ),
                id=broadcast_workflow_id(command.announcement_id, command.resend_round),
                task_queue=route.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(attributes),
            )
        )

    async def control_broadcast(self, command: ControlBroadcast) -> None:
        """Wake the broadcast; one that has ended needs nothing."""
        handle = self._client.get_workflow_handle(
            broadcast_workflow_id(command.announcement_id, command.resend_round)
        )
        await self._ignore_gone(handle.signal(BROADCAST_CONTROL, ControlSignal(command.action)))

    async def cancel_user_flows(self, user_id: str) -> None:
        """Cancel every running flow of a deleted user (a pending approval wait included)."""
        for purpose in _FLOW_TYPES:
            handle = self._client.get_workflow_handle(code_workflow_id(purpose, user_id))
            await self._ignore_gone(handle.cancel())

    async def _signal(self, workflow_id: str, signal: SignalName, arg: Any) -> bool:
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
