"""courses, modules, lessons, attachments, enrollments, completions, certificates;
the learning roles and permissions

Revision ID: 0007
Revises: 0005 (was 0004 before the pipeline branch was merged in; the integrator chains it)

The permissions and the INSTRUCTOR role are also granted here, once, so that an
existing database gets them (``seed`` only creates what is missing, and never touches
a seeded role an ADMIN has edited since).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_PERMISSIONS = {
    "courses:create": "Create courses and manage the ones you own",
    "courses:manage": "Manage every course",
    "announcements:send": "Send announcements to any audience",
    "announcements:send_own": "Send announcements to the learners of your own courses",
}
GRANTS = {
    "ADMIN": tuple(NEW_PERMISSIONS),
    "MANAGER": ("courses:manage", "announcements:send"),
    "INSTRUCTOR": ("courses:create", "announcements:send_own"),
}


def _ts(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("tags_key", sa.Text(), nullable=False),
        sa.Column("title_key", sa.String(length=200), nullable=False),
        sa.Column("enrollment_count", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("published_at", nullable=True),
        _ts("archived_at", nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_index("ix_courses_owner_id", "courses", ["owner_id"])
    op.create_index("ix_courses_status_published", "courses", ["status", "published_at", "id"])
    op.create_index("ix_courses_status_title", "courses", ["status", "title_key", "id"])

    op.create_table(
        "course_modules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_course_modules_course_id", "course_modules", ["course_id"])

    op.create_table(
        "lessons",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("module_id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("video_url", sa.String(length=2000), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("preview", sa.Boolean(), nullable=False),
        sa.Column("release_after_days", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["module_id"], ["course_modules.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lessons_course_id", "lessons", ["course_id"])
    op.create_index("ix_lessons_module_id", "lessons", ["module_id"])

    op.create_table(
        "lesson_attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("lesson_id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lesson_id"], ["lessons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lesson_attachments_course_id", "lesson_attachments", ["course_id"])
    op.create_index("ix_lesson_attachments_lesson_id", "lesson_attachments", ["lesson_id"])

    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("enrolled_at"),
        _ts("left_at", nullable=True),
        _ts("last_activity_at"),
        _ts("completed_at", nullable=True),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("course_id", "user_id", name="uq_enrollment_course_user"),
    )
    op.create_index("ix_enrollments_course_id", "enrollments", ["course_id"])
    op.create_index("ix_enrollments_user_id", "enrollments", ["user_id"])

    op.create_table(
        "lesson_completions",
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("lesson_id", sa.String(length=36), nullable=False),
        _ts("completed_at"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lesson_id"], ["lessons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enrollment_id", "lesson_id"),
    )
    op.create_index("ix_lesson_completions_lesson_id", "lesson_completions", ["lesson_id"])

    op.create_table(
        "certificates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=36), nullable=False),
        sa.Column("learner_name", sa.String(length=200), nullable=False),
        sa.Column("course_title", sa.String(length=200), nullable=False),
        _ts("issued_at"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id"),
    )
    op.create_index("ix_certificates_course_id", "certificates", ["course_id"])
    op.create_index("ix_certificates_user_id", "certificates", ["user_id"])

    op.create_table(
        "catalogue_snapshots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("course_ids", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_catalogue_snapshots_created_at", "catalogue_snapshots", ["created_at"])

    _grant_learning_permissions()


def _grant_learning_permissions() -> None:
    """On a database already seeded: the new permissions, INSTRUCTOR, and the grants of
    the contract's seeded roles.  A fresh database has no roles yet: ``seed`` makes them."""
    conn = op.get_bind()
    permissions = sa.table("permissions", sa.column("name"), sa.column("description"))
    roles = sa.table("roles", sa.column("name"), sa.column("seeded"))
    grants = sa.table("role_permissions", sa.column("role_name"), sa.column("permission_name"))
    existing_roles = {r for (r,) in conn.execute(sa.select(roles.c.name))}
    if not existing_roles:
        return
    have = {p for (p,) in conn.execute(sa.select(permissions.c.name))}
    for name, description in NEW_PERMISSIONS.items():
        if name not in have:
            conn.execute(permissions.insert().values(name=name, description=description))
    if "INSTRUCTOR" not in existing_roles:
        conn.execute(roles.insert().values(name="INSTRUCTOR", seeded=True))
        existing_roles.add("INSTRUCTOR")
    granted = {
        (r, p) for r, p in conn.execute(sa.select(grants.c.role_name, grants.c.permission_name))
    }
    for role, names in GRANTS.items():
        for name in names:
            if role in existing_roles and (role, name) not in granted:
                conn.execute(grants.insert().values(role_name=role, permission_name=name))


def downgrade() -> None:
    for table in (
        "catalogue_snapshots",
        "certificates",
        "lesson_completions",
        "enrollments",
        "lesson_attachments",
        "lessons",
        "course_modules",
        "courses",
    ):
        op.drop_table(table)
    conn = op.get_bind()
    permissions = sa.table("permissions", sa.column("name"))
    roles = sa.table("roles", sa.column("name"))
    conn.execute(permissions.delete().where(permissions.c.name.in_(list(NEW_PERMISSIONS))))
    conn.execute(roles.delete().where(roles.c.name == "INSTRUCTOR"))
