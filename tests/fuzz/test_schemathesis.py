"""Schemathesis against the running stack: every operation of ``/openapi.json``, admin
ones with an admin bearer token, valid and invalid inputs.

Checks: no 5xx, every status code documented, every body and Content-Type as the schema
says.  Bounded: a fixed number of examples per operation and generation mode, derandomized
(the same inputs each run), no shrinking; SQLite only.  The requests run in a thread so
the stack (served by this test's event loop) keeps answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.faults.support import dedicated_stack
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

MAX_EXAMPLES = 25
ANONYMOUS_EXAMPLES = 5
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
# Operations that end the caller's session get a session of their own each time, so
# the admin token the other operations use stays valid.
SESSION_ENDING = ("/logout",)


@dataclass
class AdminSession:
    base_url: str
    http: requests.Session = field(default_factory=requests.Session)
    token: str = ""

    def login(self) -> str:
        response = self.http.post(
            f"{self.base_url}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def headers(self, *, own_session: bool = False) -> dict[str, str]:
        if own_session:
            return {"Authorization": f"Bearer {self.login()}"}
        if not self.token:
            self.token = self.login()
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class FuzzReport:
    calls: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)


def fuzz(schema_dict: dict[str, Any], base_url: str) -> FuzzReport:
    schema = schemathesis.openapi.from_dict(schema_dict)
    admin = AdminSession(base_url)
    report = FuzzReport()
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        report.operations.append(label)
        own_session = operation.path.endswith(SESSION_ENDING)

        def authenticated(own: bool = own_session) -> dict[str, str]:
            return admin.headers(own_session=own)

        runs: list[tuple[str, GenerationMode, int, Callable[[], dict[str, str]]]] = [
            ("admin", GenerationMode.POSITIVE, MAX_EXAMPLES, authenticated),
            ("admin", GenerationMode.NEGATIVE, MAX_EXAMPLES, authenticated),
            ("anonymous", GenerationMode.POSITIVE, ANONYMOUS_EXAMPLES, dict),
        ]
        for caller, mode, examples, headers in runs:
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @hypothesis.given(case=strategy)
            def check(case: Any, headers: Callable[[], dict[str, str]] = headers) -> None:
                report.calls += 1
                case.call_and_validate(
                    base_url=base_url, session=http, headers=headers(), checks=CHECKS, timeout=30
                )

            try:
                check()
            except Unsatisfiable:
                continue  # nothing invalid can be generated for this operation
            except Exception as exc:  # one report per operation and mode
                report.failures[f"{label} [{caller}, {mode.value}]"] = str(exc)[:2500]
    return report


async def test_api_conforms_to_its_schema_under_fuzzing(tmp_path: Path) -> None:
    async with dedicated_stack(tmp_path) as (stack, _):
        base_url = str(stack.http.base_url).rstrip("/")
        schema_dict = (await stack.http.get("/openapi.json")).json()
        started = time.monotonic()
        report = await asyncio.to_thread(fuzz, schema_dict, base_url)
        elapsed = time.monotonic() - started
    assert len(report.operations) >= 25, report.operations
    summary = "\n\n".join(f"== {name}\n{text}" for name, text in report.failures.items())
    assert not report.failures, (
        f"{len(report.failures)} failing operation/mode pairs out of "
        f"{len(report.operations)} operations ({report.calls} calls, {elapsed:.0f}s):\n\n"
        f"{summary}"
    )
