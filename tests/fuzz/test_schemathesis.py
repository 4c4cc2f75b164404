"""Schemathesis against the running stack: every operation of ``/openapi.json``, admin
ones with an admin bearer token, valid and invalid inputs.

Checks: no 5xx, every status code documented, every body and Content-Type as the schema
says.  Bounded: a fixed number of examples per operation and generation mode, derandomized
(the same inputs each run), no shrinking; SQLite only.  One test per operation, all
against one dedicated stack; the requests run in a thread so the stack (served by the
test event loop) keeps answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from authflow.settings import Settings
from tests.faults.support import dedicated_stack
from tests.secret import TEST_SECRET
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
class FuzzTarget:
    schema: Any
    base_url: str
    admin: AdminSession
    http: requests.Session = field(default_factory=requests.Session)


def _documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the app's schema at collection."""
    spec = create_app(Settings(environment="test", jwt_secret=TEST_SECRET)).openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    ]


OPERATIONS = _documented_operations()


@pytest.fixture(scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzTarget]:
    async with dedicated_stack(tmp_path_factory.mktemp("fuzz")) as (stack, _):
        base_url = str(stack.http.base_url).rstrip("/")
        schema_dict = (await stack.http.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(schema_dict)
        yield FuzzTarget(schema, base_url, AdminSession(base_url))


async def test_every_operation_is_fuzzed(target: FuzzTarget) -> None:
    live = {(op.ok().method.upper(), op.ok().path) for op in target.schema.get_all_operations()}
    assert live == set(OPERATIONS)
    assert len(live) >= 25


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_conforms_to_its_schema(target: FuzzTarget, method: str, path: str) -> None:
    failures = await asyncio.to_thread(fuzz_operation, target, method, path)
    assert not failures, "\n\n".join(f"== {name}\n{text}" for name, text in failures.items())


def fuzz_operation(target: FuzzTarget, method: str, path: str) -> dict[str, str]:
    """Failures per caller and generation mode (the first one found by each)."""
    operation = target.schema[path][method]
    own_session = path.endswith(SESSION_ENDING)
    as_admin = partial(target.admin.headers, own_session=own_session)
    runs: list[tuple[str, GenerationMode, int, Callable[[], dict[str, str]]]] = [
        ("admin", GenerationMode.POSITIVE, MAX_EXAMPLES, as_admin),
        ("admin", GenerationMode.NEGATIVE, MAX_EXAMPLES, as_admin),
        ("anonymous", GenerationMode.POSITIVE, ANONYMOUS_EXAMPLES, dict),
    ]
    failures: dict[str, str] = {}
    for caller, mode, examples, headers in runs:
        check = _property(operation.as_strategy(generation_mode=mode), examples, headers)
        try:
            check(target.http, target.base_url)
        except Unsatisfiable:
            continue  # nothing of this mode can be generated for this operation
        except (Exception, FailureGroup) as exc:
            failures[f"{caller}, {mode.value} data"] = str(exc)[:3000]
    return failures


def _property(
    strategy: Any, examples: int, headers: Callable[[], dict[str, str]]
) -> Callable[[requests.Session, str], None]:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same inputs every run
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis.given(case=strategy)
    def check(http: requests.Session, base_url: str, case: Any) -> None:
        case.call_and_validate(
            base_url=base_url, session=http, headers=headers(), checks=CHECKS, timeout=30
        )

    return check
