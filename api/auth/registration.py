"""Registration use cases: register, resend the code, verify.

The password of a pending account is not settled until verification: each registration
of the address gets a code of its own carrying its own password, and whoever verifies
gets the password of the registration whose code they used.  A stranger who registers
the same address (before or after its owner) never decides the owner's password.
"""

from __future__ import annotations

import logging
import secrets
from typing import cast

from sqlalchemy import String, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.admission import release_slot
from api.auth.codes import (
    account_at,
    consume_code,
    start_cooldown,
    take_cooldown,
    user_by_email,
)
from api.auth.schemas import RegisterRequest
from api.flows import code_workflow_id
from api.services import Services
from api.unit_of_work import after_commit, unit_of_work
from authflow import otp_store
from authflow.commands import SignalVerified, StartCodeFlow
from authflow.errors import EmailTaken, InvalidOtp
from authflow.models import OtpDelivery, Role, User, UserRole, UserStatus, new_id, utcnow
from authflow.policies import DEFAULT_ROLE, PURPOSE_EMAIL_KIND, OtpPurpose

REGISTER = OtpPurpose.REGISTER
log = logging.getLogger(__name__)


async def register(db: AsyncSession, services: Services, body: RegisterRequest) -> User:
    """Write the pending account and its first code; its workflow starts after commit.

    Registering an address still pending verification (after the cooldown) issues a
    new code bound to this registration's password; the earlier codes keep working
    with their own passwords.
    """
    password_hash = await services.hasher.hash(body.password)  # off the event loop
    release_slot()  # hashing done: the admission slot goes to the next request
    try:
        user = await _pending_account(db, services, body, password_hash)
    except IntegrityError:
        # The same address was registered concurrently and committed first: answer
        # as for a repeated registration.
        await unit_of_work(db).rollback()
        user = await _pending_account(db, services, body, password_hash)
    return user


async def _pending_account(
    db: AsyncSession, services: Services, body: RegisterRequest, password_hash: str
) -> User:
    user = await user_by_email(db, body.email)
    if user is not None and user.status != UserStatus.PENDING_VERIFICATION:
        raise EmailTaken()
    new_account = user is None
    if user is None:
        user = User(
            id=new_id(),
            email=body.email,
            full_name=body.full_name,
            password_hash=password_hash,
            status=UserStatus.PENDING_VERIFICATION,
        )
        db.add(user)
        await db.execute(_GRANT_DEFAULT_ROLE, {"new_user_id": user.id})
        # The first code is on its way: a resend right now would only fill the inbox.
        await start_cooldown(db, services, REGISTER, body.email)
    else:
        await take_cooldown(db, services, REGISTER, body.email)
    code = await _registration_code(db, services, user, password_hash, new_account)
    after_commit(
        db,
        StartCodeFlow(
            REGISTER.value,
            user.id,
            first_code_id=code.id,
            first_code_expires_at=code.expires_at.timestamp(),
            replace=not new_account,
        ),
    )
    await db.flush()  # a concurrent first registration of the address fails here
    return user


async def _registration_code(
    db: AsyncSession, services: Services, user: User, password_hash: str, new_account: bool
) -> OtpDelivery:
    """A code of this registration, issued with it in the same transaction, so the
    workflow can send it at once.  Only its id travels to the workflow, never the code.
    The earlier registrations' codes are not superseded (``first_of_account``)."""
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
        password_hash=password_hash,  # in the INSERT: no UPDATE of the row just written
    )
    return delivery


async def _password_for_resent_code(db: AsyncSession, services: Services, user: User) -> str:
    """A resend's code carries no password.  With one registration behind the account
    its password is the one; when several people registered the address nobody can
    tell whose it is: the account is activated with a password nobody knows, and its
    owner (who holds the mailbox) sets one with a password reset."""
    hashes = set(
        await db.scalars(
            select(OtpDelivery.password_hash).where(
                OtpDelivery.user_id == user.id,
                OtpDelivery.purpose == REGISTER.value,
                OtpDelivery.password_hash.is_not(None),
            )
        )
    )
    if len(hashes) == 1:
        return str(hashes.pop())
    if not hashes:
        return user.password_hash  # an account from before registrations carried one
    log.info("contested registration verified with a resent code: password left unset")
    return await services.hasher.hash(secrets.token_urlsafe(32))


# The default role, if seeded, in one statement (no Role and permissions loaded); built
# once, like ``user_by_email``'s.
# (The table, not the entity: an ORM insert executed with parameters is a bulk insert.)
_GRANT_DEFAULT_ROLE = insert(cast(Table, UserRole.__table__)).from_select(
    ["user_id", "role_name"],
    select(bindparam("new_user_id", type_=String()), Role.name).where(Role.name == DEFAULT_ROLE),
)


async def resend(db: AsyncSession, services: Services, email: str) -> None:
    """Same answer for every address; the cooldown applies to unknown ones too."""
    await take_cooldown(db, services, REGISTER, email)
    account = await account_at(db, email)
    if account is not None and account[1] == UserStatus.PENDING_VERIFICATION:
        # Signal-with-start: a running flow issues a fresh code, a finished one
        # (code expired long ago, or a start lost in a crash) is started again.
        after_commit(db, StartCodeFlow(REGISTER.value, account[0], resend=True))


async def verify(
    db: AsyncSession, services: Services, email: str, code: str, *, ip: str | None = None
) -> str:
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.PENDING_VERIFICATION else None
    used = await consume_code(
        db, services, purpose=REGISTER, email=email, code=code, user=eligible, ip=ip
    )
    if eligible is None:  # consume_code never accepts without a user; keep mypy sure
        raise InvalidOtp()
    eligible.password_hash = used.password_hash or await _password_for_resent_code(
        db, services, eligible
    )
    needs_approval = services.settings.require_approval
    eligible.status = UserStatus.PENDING_APPROVAL if needs_approval else UserStatus.ACTIVE
    eligible.verified_at = utcnow()
    # Verified in the database is what counts; the outbox relay delivers the signal
    # later if Temporal is unreachable after the commit.
    after_commit(db, SignalVerified(REGISTER.value, eligible.id, needs_approval))
    return eligible.status
