"""Login, token refresh with rotation and reuse detection, logout, session revocation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.schemas import TokenPair
from api.services import Services
from authflow import throttle
from authflow.errors import (
    Banned,
    InvalidCredentials,
    InvalidToken,
    NotVerified,
    PendingApproval,
    TooManyAttempts,
)
from authflow.models import RefreshToken, Session, User, UserStatus, utcnow
from authflow.security.tokens import hash_refresh_token, new_refresh_token

_STATUS_ERRORS = {
    UserStatus.PENDING_VERIFICATION: NotVerified,
    UserStatus.BANNED: Banned,
    UserStatus.PENDING_APPROVAL: PendingApproval,
}


def login_key(services: Services, email: str) -> str:
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
    key = login_key(services, email)
    await count_password_attempt(db, services, key)
    user = await db.scalar(select(User).where(User.email == email))
    checked_hash = user.password_hash if user is not None else None
    await db.commit()

    ok, upgraded_hash = await services.hasher.verify(password, checked_hash)
    if ok and user is not None:
        user = await reload_user(db, user.id)
    if not ok or user is None or user.password_hash != checked_hash:
        # (Deleted, or the password changed while we were checking the old one.)
        raise InvalidCredentials()

    throttle.reset(await throttle.load(db, key))
    if upgraded_hash:
        user.password_hash = upgraded_hash  # parameters rose since this hash was made
    error = _STATUS_ERRORS.get(user.status)
    if error is not None:
        await db.commit()
        raise error()
    return await open_session(db, services, user, ip=ip, agent=agent)


async def count_password_attempt(db: AsyncSession, services: Services, key: str) -> None:
    """Refuse (429) while the account is throttled; otherwise count this attempt as a
    failure before the password is checked, so concurrent guesses are counted (and
    delayed) as they arrive.  The caller commits before hashing and forgives the
    attempt (``throttle.reset``) once the password proved right."""
    guard = await throttle.load(db, key)
    blocked = throttle.login_blocked_for(guard)
    if blocked:
        raise TooManyAttempts(retry_after=blocked)
    throttle.add_login_failure(guard, services.settings.login_max_failures_per_hour)


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
    session = Session(
        user_id=user.id,
        expires_at=utcnow() + timedelta(seconds=services.settings.refresh_token_ttl_seconds),
        ip=ip,
        user_agent=(agent or "")[:300] or None,
    )
    db.add(session)
    await db.flush()
    return await _issue_pair(db, services, session)


async def _issue_pair(db: AsyncSession, services: Services, session: Session) -> TokenPair:
    token, token_hash = new_refresh_token()
    db.add(RefreshToken(token_hash=token_hash, session_id=session.id))
    await db.flush()
    return TokenPair(
        access_token=services.tokens.issue_access(session.user_id, session.id),
        refresh_token=token,
        expires_in=services.tokens.ttl_seconds,
    )


async def refresh(db: AsyncSession, services: Services, token: str) -> TokenPair:
    """Single use: the presented token is spent and a new pair issued.  A token that was
    already spent means it leaked (or was stolen): the whole session is revoked."""
    record = await db.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(token))
        .with_for_update()
    )
    if record is None:
        raise InvalidToken()
    session = await db.get(Session, record.session_id, with_for_update=True)
    if session is None or session.revoked_at is not None or session.expires_at <= utcnow():
        raise InvalidToken()
    if record.used_at is not None:
        revoke(session, "refresh_token_reuse")
        await db.commit()
        raise InvalidToken("This refresh token was already used; the session has been revoked.")
    user = await db.get(User, session.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise InvalidToken()
    record.used_at = utcnow()
    return await _issue_pair(db, services, session)


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
