"""A 2,000-recipient announcement while its worker is SIGKILLed again and again.

Every recipient gets the email; none twice, except where a worker died after the sink
took the message and before the worker recorded it: then the retry of the send sends it
again, and the announcement counts it in ``repeats`` (emails delivered by a later attempt
than their first).
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from authflow.models import Role, User, UserRole, UserStatus, new_id, utcnow
from tests.e2e.test_rbac_matrix import admin_headers
from tests.faults.support import (
    probing,
    start_worker,
    worker_process,
    workers_in_subprocesses,
)
from tests.stack import Stack, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.timeout(900)]

RECIPIENTS = 2000
KILLS = 3
# Faster than the default 5/s so that the test takes a minute, not seven.
RATE = "announcement=50"


async def _audience(stack: Stack, size: int) -> tuple[str, list[str]]:
    """``size`` active users holding a fresh role, written straight to the database
    (registering 2,000 accounts through the API would be a test of its own)."""
    role = f"CROWD_{secrets.token_hex(4).upper()}"
    now = utcnow()
    emails = [f"crowd-{secrets.token_hex(6)}@example.com" for _ in range(size)]
    users = [
        {
            "id": new_id(),
            "email": email,
            "full_name": None,
            "password_hash": "!",
            "status": UserStatus.ACTIVE,
            "created_at": now,
            "updated_at": now,
            "verified_at": now,
        }
        for email in emails
    ]
    async with stack.db.session() as session:
        session.add(Role(name=role, seeded=False))
        await session.flush()
        await session.execute(insert(User), users)
        await session.execute(
            insert(UserRole), [{"user_id": u["id"], "role_name": role} for u in users]
        )
    return role, emails


async def test_killed_workers_send_each_recipient_once(stack: Stack, tmp_path: Path) -> None:
    role, emails = await _audience(stack, RECIPIENTS)
    admin = await admin_headers(stack)
    subject = f"Crowd {secrets.token_hex(3)}"
    mark = stack.sink.last_id
    worker = worker_process(stack.settings, tmp_path / "worker.log", EMAIL_RATE_LIMITS=RATE)
    killed_mid_send = 0
    async with workers_in_subprocesses(stack):
        with probing(stack.sink, delay=0.2) as probe:
            await start_worker(worker)
            try:
                r = await stack.http.post(
                    "/api/v1/announcements",
                    json={
                        "audience": {"kind": "role", "role": role},
                        "subject": subject,
                        "body": "Everyone, once.",
                    },
                    headers=admin,
                )
                assert r.status_code == 202, r.text
                one = f"/api/v1/announcements/{r.json()['id']}"
                for kill in range(KILLS):
                    # Spread the kills over the sending.
                    async def far_enough(k: int = kill) -> bool:
                        sent = sum(1 for a in probe.attempts if a.accepted)
                        return sent > (k + 1) * RECIPIENTS // (KILLS + 2) and probe.in_flight > 0

                    await eventually(far_enough, timeout=240, interval=0.02)
                    killed_mid_send += probe.in_flight > 0
                    worker.kill()
                    await start_worker(worker)

                async def done() -> Any:
                    body = (await stack.http.get(one, headers=admin)).json()
                    return body if body["state"] == "done" else None

                final = await eventually(done, timeout=600, interval=5.0)
            finally:
                worker.stop()
    assert killed_mid_send == KILLS, "every kill was meant to hit a send in flight"

    received = Counter(
        rcpt
        for m in stack.sink.messages
        if m.id > mark and m.subject == subject
        for rcpt in m.rcpt_tos
    )
    wanted = {e.lower() for e in emails}
    assert {r.lower() for r in received} == wanted, "every recipient, nobody else"
    repeated = sum(n - 1 for n in received.values())
    assert max(received.values()) <= 2
    assert (final["total"], final["sent"], final["failed"], final["skipped"]) == (
        RECIPIENTS,
        RECIPIENTS,
        0,
        0,
    )
    # Each email that went out twice is one the announcement counted as a possible
    # repeat (delivered by a retry); not every retry repeats (the kill may have come
    # before the sink took the first).
    assert repeated <= final["repeats"] <= KILLS * 10
    print(
        f"\n{RECIPIENTS} recipients, sigkill x{KILLS}: {repeated} sent twice, "
        f"{final['repeats']} counted as possible repeats"
    )
