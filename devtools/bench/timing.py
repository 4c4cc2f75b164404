"""``authflow bench timing``: do the answers that must not tell whether an account exists
take the same time?  The contract: login, resend-otp and password/forgot answer a known
and an unknown email "in comparable time (medians within 5 ms)" (docs/security.md,
finding 9 of the security review: forgot-password once answered a known address in
30.6 ms and an unknown one in 15.5 ms).

A stack of its own (``authflow dev`` on SQLite, mail to this process's sink); for each
endpoint, ``--n`` distinct known addresses and ``--n`` distinct unknown ones (each used
once, so no cooldown or throttle answers differently), requested one at a time,
alternating known and unknown so that drift of this VM's speed hits both alike.  Reports
both medians and their difference per endpoint; a timing is a figure for
docs/benchmarks.md, not a test (tests/e2e/test_security.py checks the mechanism: nothing
the known case does extra runs before the answer).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from devtools.bench.sink import BenchSink
from devtools.bench.stack import OwnStack

# The contract's bound on the difference of the medians.
TARGET_MS = 5.0
PASSWORD = "bench timing pass phrase"
AUTH = "/api/v1/auth"


@dataclass(frozen=True)
class Pair:
    endpoint: str
    known_median_ms: float
    unknown_median_ms: float
    known_statuses: list[int]
    unknown_statuses: list[int]

    @property
    def difference_ms(self) -> float:
        return abs(self.known_median_ms - self.unknown_median_ms)


async def _timed(http: httpx.AsyncClient, path: str, body: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    answer = await http.post(path, json=body)
    return (time.perf_counter() - started) * 1000, answer.status_code


async def _pair(
    http: httpx.AsyncClient, endpoint: str, path: str, known: list[dict[str, str]], run: str
) -> Pair:
    known_ms: list[float] = []
    unknown_ms: list[float] = []
    known_codes: list[int] = []
    unknown_codes: list[int] = []
    for index, body in enumerate(known):
        ghost = {**body, "email": f"ghost-{run}-{endpoint}-{index}@example.com"}
        # Alternate which goes first, so neither side always follows the other.
        order = [(body, True), (ghost, False)] if index % 2 == 0 else [(ghost, False), (body, True)]
        for request, is_known in order:
            ms, status = await _timed(http, path, request)
            (known_ms if is_known else unknown_ms).append(ms)
            (known_codes if is_known else unknown_codes).append(status)
    return Pair(
        endpoint,
        statistics.median(known_ms),
        statistics.median(unknown_ms),
        sorted(set(known_codes)),
        sorted(set(unknown_codes)),
    )


async def _users(http: httpx.AsyncClient, sink: BenchSink, emails: list[str], verify: bool) -> None:
    async def one(email: str) -> None:
        r = await http.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        if verify:
            code = await sink.wait_for_code(email, "register", timeout=120)
            r = await http.post(f"{AUTH}/register/verify", json={"email": email, "otp": code})
            r.raise_for_status()

    await asyncio.gather(*(one(email) for email in emails))


async def measure(n: int, log_file: Path) -> list[Pair]:
    sink = BenchSink()
    await sink.start()
    # Every request comes from 127.0.0.1, which the bench's stack allows (OwnStack lifts
    # the per-address limit); the resend cooldown must have passed for the pending
    # users, as it has for an attacker's own registration.
    stack = OwnStack(
        workers=1,
        smtp_host=sink.host,
        smtp_port=sink.port,
        log_file=log_file,
        extra_env={"OTP_RESEND_COOLDOWN_SECONDS": "1"},
    )
    await stack.start()
    run = uuid.uuid4().hex[:8]
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            active = [f"active-{run}-{i}@example.com" for i in range(n)]
            pending = [f"pending-{run}-{i}@example.com" for i in range(n)]
            await _users(http, sink, active, verify=True)
            await _users(http, sink, pending, verify=False)
            await asyncio.sleep(1.5)  # past the resend cooldown of the pending ones
            # Warm every route once (first-request costs are not what is compared).
            for path in ("/password/forgot", "/register/resend-otp", "/login"):
                await _timed(
                    http, AUTH + path, {"email": f"warm-{run}@example.com", "password": "x" * 12}
                )
            return [
                await _pair(
                    http,
                    "login",
                    f"{AUTH}/login",
                    [{"email": e, "password": "a wrong pass phrase"} for e in active],
                    run,
                ),
                await _pair(
                    http,
                    "resend-otp",
                    f"{AUTH}/register/resend-otp",
                    [{"email": e} for e in pending],
                    run,
                ),
                await _pair(
                    http,
                    "password/forgot",
                    f"{AUTH}/password/forgot",
                    [{"email": e} for e in active],
                    run,
                ),
            ]
    finally:
        await stack.stop()
        await sink.stop()


def main(n: int, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    pairs = asyncio.run(measure(n, out / "logs" / "timing.log"))
    print(
        f"known vs unknown email, medians of {n} each, one request at a time "
        f"(target: within {TARGET_MS:.0f} ms)"
    )
    print(f"{'endpoint':<18}{'known ms':>10}{'unknown ms':>12}{'diff ms':>9}  statuses  verdict")
    for p in pairs:
        verdict = "PASS" if p.difference_ms <= TARGET_MS else "MISS"
        print(
            f"{p.endpoint:<18}{p.known_median_ms:>10.1f}{p.unknown_median_ms:>12.1f}"
            f"{p.difference_ms:>9.1f}  {p.known_statuses}/{p.unknown_statuses}  {verdict}"
        )
    (out / "timing.json").write_text(
        json.dumps(
            {
                "n": n,
                "target_ms": TARGET_MS,
                "pairs": [asdict(p) | {"difference_ms": p.difference_ms} for p in pairs],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out / 'timing.json'}")
    return 0
