"""Login, token refresh with rotation and reuse detection, logout, session revocation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.admission import release_slot
from api.auth import events
from api.auth.schemas import TokenPair
from api.services import Services
from api.unit_of_work import unit_of_work
from authflow import throttle
from authflow.errors import (
    Banned,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    NotVerified,
    PendingApproval,
    TooManyAttempts,
)
from authflow.models import RefreshToken, Session, Throttle, User, UserStatus, utcnow
from authflow.policies import REFRESH_GRACE_SECONDS
from authflow.security.crypto import seal, unseal
from authflow.security.tokens import hash_refresh_token, new_refresh_token

_STATUS_ERRORS = {
    UserStatus.PENDING_VERIFICATION: NotVerified,
    UserStatus.BANNED: Banned,
    UserStatus.PENDING_APPROVAL: PendingApproval,
}


def login_key(services: Services, email: str, ip: str | None) -> str:
    """Failures of one account from one client address (the doubling delay)."""
    return services.vault.email_key("login-client", f"{ip or '-'}\n{email}")


def account_key(services: Services, email: str) -> str:
    """Failures of one account from everywhere (the hourly hard cap)."""
    return services.vault.email_key("login", email)


async def login(
    db: AsyncSession,
    services: Services,
    email: str,
    password: str,
    *,
    ip: str | None,
    agent: str | None,
) -> TokenPair:
    """401 for an unknown email and a wrong password alike (a dummy hash is verified
    for unknown emails, and both take the same steps); a 403 reason only after the
    right password.  No transaction (no lock: SQLite has only one) is held while the
    hash is checked.
    """
    await count_password_attempt(db, services, email, ip)
    # Two columns, not the User (whose roles and permissions load with it): a known
    # address must not cost queries an unknown one does not (docs/security.md).
    found = (
        await db.execute(select(User.id, User.password_hash).where(User.email == email))
    ).first()
    checked_hash = found.password_hash if found is not None else None
    await db.commit()  # the attempt counts (and no lock is held) while we hash

    ok, upgraded_hash = await services.hasher.verify(password, checked_hash)
    release_slot()
    user = await reload_user(db, found.id) if ok and found is not None else None
    if not ok or user is None or user.password_hash != checked_hash:
        # (Deleted, or the password changed while we were checking the old one.)
        unit_of_work(db).keep_when_failing()
        events.record(db, events.LOGIN_FAILED, None, found.id if found else None, ip)
        raise InvalidCredentials()

    await forgive_password_attempt(db, services, email, ip)
    if upgraded_hash:
        user.password_hash = upgraded_hash  # parameters rose since this hash was made
    error = _STATUS_ERRORS.get(user.status)
    if error is not None:
        unit_of_work(db).keep_when_failing()
        raise error()
    pair = await open_session(db, services, user, ip=ip, agent=agent)
    events.record(db, events.LOGIN, user.id, user.id, ip)
    return pair


async def count_password_attempt(
    db: AsyncSession, services: Services, email: str, ip: str | None
) -> None:
    """Refuse (429) while this account is throttled for this client address, or has
    reached its hourly cap of failures; otherwise count this attempt as a failure
    before the password is checked, so concurrent guesses are counted (and delayed) as
    they arrive.  The caller commits before hashing and forgives the attempt
    (``forgive_password_attempt``) once the password proved right.

    The delay is per account *and* client address: failures from one address never
    lock the owner out when they sign in from another.
    """
    cap = services.settings.login_max_failures_per_hour
    account, guard = await _lock_login_throttles(db, services, email, ip)
    blocked = throttle.login_blocked_for(guard) or throttle.rolling_wait(
        account, cap, throttle.HOUR
    )
    if blocked:
        unit_of_work(db).keep_when_failing()
        # The account, when there is one, so ``?target_id=`` finds its lockouts.  Looked up
        # for unknown addresses too: the answer and its statements stay the same for both.
        target = await db.scalar(select(User.id).where(User.email == email))
        events.record(db, events.LOCKED, None, target, ip, retry_after=blocked)
        raise TooManyAttempts(retry_after=blocked)
    throttle.add_login_failure(guard, cap)
    throttle.add_rolling(account, throttle.HOUR, cap)


async def forgive_password_attempt(
    db: AsyncSession, services: Services, email: str, ip: str | None
) -> None:
    account, guard = await _lock_login_throttles(db, services, email, ip)
    throttle.reset(guard)
    throttle.forgive_rolling(account)


async def _lock_login_throttles(
    db: AsyncSession, services: Services, email: str, ip: str | None
) -> list[Throttle]:
    """The account's and the (account, address) pair's counters, locked in key order:
    a login counting its attempt and a concurrent one of the same account forgiving its
    own must take the two rows in the same order, or PostgreSQL finds them deadlocked."""
    return await throttle.load_many(
        db, [account_key(services, email), login_key(services, email, ip)]
    )


async def reload_user(db: AsyncSession, user_id: str) -> User | None:
    """The user as stored now (not as this session last saw it), locked."""
    return await db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def open_session(
    db: AsyncSession, services: Services, user: User, *, ip: str | None, agent: str | None
) -> TokenPair:
    now = utcnow()
    session = Session(
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=services.settings.refresh_token_ttl_seconds),
        ip=ip,
        user_agent=(agent or "")[:300] or None,
    )
    db.add(session)
    await db.flush()
    pair, _ = await _issue_pair(db, services, session)
    return pair


async def _issue_pair(
    db: AsyncSession, services: Services, session: Session
) -> tuple[TokenPair, RefreshToken]:
    token, token_hash = new_refresh_token()
    record = RefreshToken(token_hash=token_hash, session_id=session.id)
    db.add(record)
    await db.flush()
    pair = TokenPair(
        access_token=services.tokens.issue_access(session.user_id, session.id),
        refresh_token=token,
        expires_in=services.tokens.ttl_seconds,
    )
    return pair, record


def session_is_live(session: Session, services: Services, now: datetime | None = None) -> bool:
    """Not revoked, within its maximum life, and used recently enough."""
    now = now or utcnow()
    idle = timedelta(seconds=services.settings.refresh_token_idle_seconds)
    last = session.last_used_at or session.created_at
    return session.revoked_at is None and session.expires_at > now and now - last < idle


def _grace_key(services: Services) -> bytes:
    return services.settings.derived_key("refresh-grace")


def _seal_pair(services: Services, token_hash: str, pair: TokenPair) -> bytes:
    return seal(_grace_key(services), pair.model_dump_json().encode(), token_hash.encode())


def _unseal_pair(services: Services, token_hash: str, sealed: bytes) -> TokenPair | None:
    try:
        raw = unseal(_grace_key(services), sealed, token_hash.encode())
    except Exception:  # another key (secret rotated): no grace, the token is spent
        return None
    return TokenPair.model_validate_json(raw)


async def refresh(
    db: AsyncSession, services: Services, token: str, *, ip: str | None = None
) -> TokenPair:
    """Single use: the presented token is spent and a new pair issued.  Presented again
    within the grace (two tabs refreshing at once) it answers the same new pair;
    later, it means the token leaked (or was stolen): the whole session is revoked."""
    token_hash = hash_refresh_token(token)
    record = await db.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )
    if record is None:
        raise InvalidToken()
    session = await db.get(Session, record.session_id, with_for_update=True)
    now = utcnow()
    if session is None or not session_is_live(session, services, now):
        raise InvalidToken()
    user = await db.get(User, session.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise InvalidToken()
    if record.used_at is not None:
        within_grace = (now - record.used_at).total_seconds() <= REFRESH_GRACE_SECONDS
        again = _unseal_pair(services, token_hash, record.successor) if record.successor else None
        if within_grace and again is not None:
            return again
        revoke(session, "refresh_token_reuse")
        unit_of_work(db).keep_when_failing()
        events.record(db, events.REFRESH_REUSE, None, session.user_id, ip, session_id=session.id)
        raise InvalidToken("This refresh token was already used; the session has been revoked.")
    pair, _ = await _issue_pair(db, services, session)
    record.used_at = now
    record.successor = _seal_pair(services, token_hash, pair)
    session.last_used_at = now
    return pair


async def list_sessions(db: AsyncSession, services: Services, user_id: str) -> list[Session]:
    rows = await db.scalars(
        select(Session)
        .where(Session.user_id == user_id, Session.revoked_at.is_(None))
        .order_by(Session.created_at.desc())
    )
    now = utcnow()
    return [s for s in rows if session_is_live(s, services, now)]


async def revoke_own_session(db: AsyncSession, user_id: str, session_id: str) -> None:
    session = await db.get(Session, session_id, with_for_update=True)
    if session is None or session.user_id != user_id or session.revoked_at is not None:
        raise NotFound("No such session.")
    revoke(session, "revoked_by_user")


def revoke(session: Session, reason: str) -> None:
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = reason


async def logout(db: AsyncSession, session_id: str, user_id: str, refresh_token: str) -> None:
    """End the caller's session; the refresh token presented, if it is another session
    of the same user, ends too."""
    sessions = {session_id}
    record = await db.get(RefreshToken, hash_refresh_token(refresh_token))
    if record is not None:
        other = await db.get(Session, record.session_id)
        if other is not None and other.user_id == user_id:
            sessions.add(other.id)
    await revoke_sessions(db, user_id, reason="logout", only=sessions)


async def revoke_sessions(
    db: AsyncSession,
    user_id: str,
    *,
    reason: str,
    only: set[str] | None = None,
    keep: str | None = None,
) -> None:
    stmt = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
    if only is not None:
        stmt = stmt.where(Session.id.in_(only))
    if keep is not None:
        stmt = stmt.where(Session.id != keep)
    await db.execute(stmt.values(revoked_at=utcnow(), revoked_reason=reason))
