"""The grant guard on its own: below ADMIN nobody holds roles:manage (the API refuses to
give it to another role, tests/e2e/test_admin_guards.py), so no request can reach an
actor that manages roles and lacks a permission; the guard stays as the second line."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.admin.guards import ensure_may_grant
from authflow.errors import Forbidden


def actor(*permissions: str) -> Any:
    return cast(Any, SimpleNamespace(permissions=frozenset(permissions)))


def test_nobody_grants_a_permission_they_lack() -> None:
    ensure_may_grant(actor("roles:manage", "users:read"), ["users:read"])
    with pytest.raises(Forbidden) as refused:
        ensure_may_grant(actor("roles:manage", "users:read"), ["users:read", "users:delete"])
    assert "users:delete" in refused.value.message and "users:read" not in refused.value.message
