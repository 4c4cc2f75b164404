"""Seed data: the contract's roles and permissions, and the bootstrap admin."""

from __future__ import annotations

from sqlalchemy import select

from authflow.addresses import InvalidAddress, canonical_email
from authflow.db import Database
from authflow.models import Permission, Role, User, UserStatus, utcnow
from authflow.policies import ADMIN_ROLE, PERMISSIONS, SEEDED_ROLES
from authflow.security.password_policy import PasswordRejected, check_password
from authflow.security.passwords import PasswordHasher
from authflow.settings import InsecureConfiguration, Settings

ADMIN_NAME = "Administrator"


async def seed(db: Database, settings: Settings) -> list[str]:
    """Returns what was created (empty on a second run)."""
    created: list[str] = []
    async with db.session() as session:
        for name, description in PERMISSIONS.items():
            if await session.get(Permission, name) is None:
                session.add(Permission(name=name, description=description))
                created.append(f"permission {name}")
        await session.flush()
        for role_name, permission_names in SEEDED_ROLES.items():
            role = await session.get(Role, role_name)
            if role is None:
                perms = [await session.get(Permission, p) for p in permission_names]
                session.add(Role(name=role_name, seeded=True, permissions=[p for p in perms if p]))
                created.append(f"role {role_name}")
        await session.flush()
        if settings.admin_email and settings.admin_password:
            try:  # stored in the form every sign-in produces
                email = canonical_email(settings.admin_email.strip())
            except InvalidAddress:
                raise InsecureConfiguration("ADMIN_EMAIL is not a valid email address") from None
            try:  # the bootstrap admin obeys the password rules like everyone else
                check_password(settings.admin_password, email=email, name=ADMIN_NAME)
            except PasswordRejected as exc:
                raise InsecureConfiguration(f"ADMIN_PASSWORD is refused: {exc.reason}") from None
            existing = await session.scalar(select(User).where(User.email == email))
            if existing is None:
                admin_role = await session.get(Role, ADMIN_ROLE)
                session.add(
                    User(
                        email=email,
                        full_name=ADMIN_NAME,
                        password_hash=PasswordHasher().hash_sync(settings.admin_password),
                        status=UserStatus.ACTIVE,
                        verified_at=utcnow(),
                        roles=[admin_role] if admin_role else [],
                    )
                )
                created.append(f"admin {email}")
    return created
