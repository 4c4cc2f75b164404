"""Registration use cases: register, resend the code, verify."""

from __future__ import annotations

import logging

from sqlalchemy import Executable, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.codes import consume_code, start_cooldown, take_cooldown, user_by_email
from api.auth.schemas import RegisterRequest
from api.flows import code_workflow_id
from api.services import Services
from authflow import otp_store
from authflow.errors import EmailTaken, InvalidOtp
from authflow.models import Role, User, UserRole, UserStatus, new_id, utcnow
from authflow.policies import DEFAULT_ROLE, PURPOSE_EMAIL_KIND, OtpPurpose
from workflows.inputs import IssuedCode

REGISTER = OtpPurpose.REGISTER
log = logging.getLogger(__name__)


async def register(db: AsyncSession, services: Services, body: RegisterRequest) -> User:
    """Write the pending account, commit, then start its registration workflow.

    A second registration of an address still waiting for verification returns the
    same account and workflow (a retried request never starts two) and changes nothing:
    otherwise anyone could replace the password of an account they cannot verify.
    """
    password_hash = await services.hasher.hash(body.password)  # off the event loop
    try:
        user, first_code = await _pending_account(db, services, body, password_hash)
    except IntegrityError:
        # The same address was registered concurrently and committed first: answer
        # as for a repeated registration.
        await db.rollback()
        user, first_code = await _pending_account(db, services, body, password_hash)
    await services.flows.start_code_flow(REGISTER, user.id, resend=False, first_code=first_code)
    return user


async def _pending_account(
    db: AsyncSession, services: Services, body: RegisterRequest, password_hash: str
) -> tuple[User, IssuedCode | None]:
    """The account, and its first code when this request created it."""
    user = await user_by_email(db, body.email)
    if user is not None and user.status != UserStatus.PENDING_VERIFICATION:
        raise EmailTaken()
    first_code = None
    if user is None:
        user = User(
            id=new_id(),
            email=body.email,
            full_name=body.full_name,
            password_hash=password_hash,
            status=UserStatus.PENDING_VERIFICATION,
        )
        db.add(user)
        await db.execute(_grant_default_role(user.id))
        # The first code is on its way: a resend right now would only fill the inbox.
        await start_cooldown(db, services, REGISTER, body.email)
        first_code = await _first_code(db, services, user)
    await db.commit()
    return user, first_code


async def _first_code(db: AsyncSession, services: Services, user: User) -> IssuedCode:
    """Issue the new account's first code with it, in the same transaction, so the
    workflow can send it at once (it would otherwise issue one in a step of its own
    before the first email).  Only its id travels to the workflow, never the code."""
    rules = services.otp_rules
    delivery = await otp_store.issue_code(
        db,
        services.vault,
        user_id=user.id,
        email=user.email,
        purpose=REGISTER.value,
        kind=PURPOSE_EMAIL_KIND[REGISTER].value,
        workflow_id=code_workflow_id(REGISTER, user.id),
        length=rules.length,
        ttl_seconds=rules.ttl_seconds,
        first_of_account=True,
    )
    return IssuedCode(delivery.id, delivery.expires_at.timestamp())


def _grant_default_role(user_id: str) -> Executable:
    """The default role, if seeded, in one statement (no Role and permissions loaded)."""
    return insert(UserRole).from_select(
        ["user_id", "role_name"],
        select(literal(user_id), Role.name).where(Role.name == DEFAULT_ROLE),
    )


async def resend(db: AsyncSession, services: Services, email: str) -> None:
    """Same answer for every address; the cooldown applies to unknown ones too."""
    await take_cooldown(db, services, REGISTER, email)
    user = await user_by_email(db, email)
    await db.commit()
    if user is not None and user.status == UserStatus.PENDING_VERIFICATION:
        # Signal-with-start: a running flow issues a fresh code, a finished one
        # (code expired long ago, or a start lost in a crash) is started again.
        await services.flows.start_code_flow(REGISTER, user.id, resend=True)


async def verify(db: AsyncSession, services: Services, email: str, code: str) -> str:
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.PENDING_VERIFICATION else None
    await consume_code(db, services, purpose=REGISTER, email=email, code=code, user=eligible)
    if eligible is None:  # consume_code never accepts without a user; keep mypy sure
        raise InvalidOtp()
    needs_approval = services.settings.require_approval
    eligible.status = UserStatus.PENDING_APPROVAL if needs_approval else UserStatus.ACTIVE
    eligible.verified_at = utcnow()
    signal = services.outbox.add(
        db, "verified", user_id=eligible.id, purpose=REGISTER.value, needs_approval=needs_approval
    )
    await db.commit()
    # Verified in the database is what counts; the outbox relay delivers the signal
    # later if Temporal is unreachable now.
    await services.outbox.dispatch(signal)
    return eligible.status
