"""Announcement set-ups shared by the API's and the console's tests."""

from __future__ import annotations

import secrets
from typing import Any

from tests.e2e.test_announcements import BASE, _finished, _role_with
from tests.e2e.test_rbac_matrix import admin_headers
from tests.stack import Stack


async def failed_broadcast(
    stack: Stack, members: int, label: str = "Failing"
) -> tuple[str, list[Any], str]:
    """An announcement (by an admin) to a fresh role of ``members`` whose every email the
    provider refused for good: its id, the members and the subject."""
    role, people = await _role_with(stack, members)
    announcement, subject, done = await refused_broadcast(stack, role, label)
    assert done["failed"] == members
    return announcement, people, subject


async def refused_broadcast(stack: Stack, role: str, label: str) -> tuple[str, str, dict[str, Any]]:
    """An announcement (by an admin) to ``role`` sent while the provider refuses every
    email for good, once finished: its id, its subject and its final figures."""
    admin = await admin_headers(stack)
    subject = f"{label} {secrets.token_hex(3)}"
    stack.sink.faults.mode = "permanent"
    try:
        r = await stack.http.post(
            BASE,
            json={"audience": {"kind": "role", "role": role}, "subject": subject, "body": "b"},
            headers=admin,
        )
        assert r.status_code == 202, r.text
        done: dict[str, Any] = await _finished(stack, r.json()["id"], admin)
    finally:
        stack.sink.faults.reset()
    return r.json()["id"], subject, done
