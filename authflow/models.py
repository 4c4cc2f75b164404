"""Database models.  Migrations (``authflow/migrations``) are the schema's source of truth;
these classes mirror them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class UserStatus:
    PENDING_VERIFICATION = "pending_verification"
    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"
    BANNED = "banned"
    ALL = (PENDING_VERIFICATION, PENDING_APPROVAL, ACTIVE, BANNED)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    roles: Mapped[list[Role]] = relationship(secondary="user_roles", lazy="selectin")


class EmailPreference(Base):
    """Which optional kinds of email a user receives; no row means all of them."""

    __tablename__ = "email_preferences"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    announcements: Mapped[bool] = mapped_column(Boolean, default=True)
    course_updates: Mapped[bool] = mapped_column(Boolean, default=True)
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Role(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    seeded: Mapped[bool] = mapped_column(Boolean, default=False)
    permissions: Mapped[list[Permission]] = relationship(
        secondary="role_permissions", lazy="selectin"
    )


class Permission(Base):
    __tablename__ = "permissions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")


class RolePermission(Base):
    __tablename__ = "role_permissions"

    role_name: Mapped[str] = mapped_column(
        ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )
    permission_name: Mapped[str] = mapped_column(
        ForeignKey("permissions.name", ondelete="CASCADE"), primary_key=True
    )


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_name: Mapped[str] = mapped_column(
        ForeignKey("roles.name", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )


class Session(Base):
    """A login session: one chain of rotating refresh tokens."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # A refresh token dies after ``refresh_idle_seconds`` unused (expires_at is the cap).
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RefreshToken(Base):
    """Only the SHA-256 of a refresh token is stored; a used one is kept to detect reuse."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The pair this token was exchanged for, sealed: a second refresh within the grace
    # (two browser tabs) gets the same pair instead of revoking the session.
    successor: Mapped[bytes | None] = mapped_column(LargeBinary)


class EmailDelivery(Base):
    """One email and its delivery: every email the platform sends has one.

    ``email_type`` names its declaration (``authflow.emails``), ``kind`` the contract's
    email kind (its queue).  Its state changes only through ``authflow.deliveries``.
    A code email also holds its code, only as a keyed hash (to verify) and sealed with
    AES-GCM (so a retried send carries the same code); the code never travels through
    Temporal.  ``context``: the template's values, ids and plain data only.
    """

    __tablename__ = "email_deliveries"
    __table_args__ = (Index("ix_email_deliveries_user_purpose", "user_id", "purpose"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    email_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str | None] = mapped_column(String(32))
    context: Mapped[dict[str, object] | None] = mapped_column(JSON)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    sealed_code: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When the content stops mattering: a code's expiry; for other emails, when their
    # kind gives up retrying.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when a newer code replaced this one (the old code stops working at once).
    superseded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Claimed by an admin re-send (conditional UPDATE): two clicks send one email.
    resend_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The password of the registration that asked for this code (register purpose only):
    # whoever verifies with this code gets this password, nobody else's.
    password_hash: Mapped[str | None] = mapped_column(String(255))


# The name the code paths have always used: a code is a delivery that carries one.
OtpDelivery = EmailDelivery


class Throttle(Base):
    """Counters keyed by purpose and a keyed hash of the email address.

    One row serves code cooldowns, wrong-code counts and login failures alike, for
    known and unknown addresses, so the answers reveal nothing about who is registered.
    """

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_at: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    # Failure times (epoch seconds, space-separated) of a rolling window: the daily cap
    # of wrong codes.
    recent: Mapped[str] = mapped_column(Text, default="", server_default="")


class SendSlot(Base):
    """Shared pacing state of one task queue's sends (see ``activities.pacer``)."""

    __tablename__ = "send_slots"

    task_queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Sends whose end of DATA may be answered any moment now: ``token@expiry`` leases,
    # space-separated.  Released with the acceptance time when the server answers.
    in_flight: Mapped[str] = mapped_column(Text, default="", server_default="")
    # When the server accepted the latest messages (epoch seconds, oldest first,
    # space-separated): the rolling window; only those still in it are kept.
    recent_accepts: Mapped[str] = mapped_column(Text, default="", server_default="")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_id: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)


class PendingFlow(Base):
    """A workflow call that must follow a committed change (the transactional outbox).

    Written in the same transaction as the change, dispatched right after the commit,
    deleted once Temporal accepted it; the API's relay retries what is left, so a
    Temporal outage delays an email but never loses it.
    """

    __tablename__ = "pending_flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    action: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))


# Every domain's tables on the one metadata (migrations, tests and relationships see
# them whoever imports ``Base``).  At the end: the domain modules import ``Base`` from here.
import authflow.announcements.models  # noqa: E402
import authflow.courses.models  # noqa: E402
import authflow.quizzes.models  # noqa: E402, F401
