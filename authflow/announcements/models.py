"""Announcement tables: the broadcast itself and one row per recipient."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authflow.announcements.states import AnnouncementState, RecipientState
from authflow.models import Base, UtcDateTime, new_id, utcnow


class Announcement(Base):
    __tablename__ = "announcements"
    __table_args__ = (
        Index("ix_announcements_created", "created_at", "id"),
        Index("ix_announcements_sender_created", "sender_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # A deleted sender leaves the announcement to [announcements:send].
    sender_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    audience_kind: Mapped[str] = mapped_column(String(16))
    audience_role: Mapped[str | None] = mapped_column(String(64))
    audience_course_id: Mapped[str | None] = mapped_column(
        ForeignKey("courses.id", ondelete="SET NULL"), index=True
    )
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # Markdown, as written
    body_html: Mapped[str] = mapped_column(Text)  # rendered and sanitised once, at creation
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), default=AnnouncementState.SCHEDULED)
    # The audience's size: estimated at creation, exact once sending starts.
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Rounds of "re-send failed" so far; round n runs as ``announcement-<id>-resend-<n>``.
    resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AnnouncementRecipient(Base):
    """One user of an announcement's audience.  The primary key is the uniqueness the
    contract asks for (one email per recipient); the row is claimed (``sending``) by a
    conditional UPDATE before the SMTP transaction starts, so no second send starts."""

    __tablename__ = "announcement_recipients"
    __table_args__ = (Index("ix_announcement_recipients_state", "announcement_id", "state"),)

    announcement_id: Mapped[str] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: a user deleted after the audience was resolved keeps their row,
    # so the announcement's figures still add up.
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=RecipientState.PENDING)
    # Claims of the row: more than one means a claim was replayed (its worker died
    # before the workflow recorded it); it found the same delivery record.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    # The round that last opened this recipient (0: the first send).  Their email's
    # delivery record id is derived from it: a new record per round (a failed record
    # stays failed, the ledger never revives it), the same one for a replayed claim.
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
