"""The API's Temporal gate: a healthy answer is cached, a failed one is not, and a
``not serving`` answer counts as down (the real-chain cases are in tests/faults)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from temporalio.client import Client

from api.unit_of_work import WorkflowGate
from authflow.errors import ServiceUnavailable


class FakeService:
    def __init__(self, answers: list[bool | Exception]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    async def check_health(self, **kwargs: Any) -> bool:
        self.calls.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def gate_over(service: FakeService) -> WorkflowGate:
    client = type("FakeClient", (), {"service_client": service})()
    return WorkflowGate(cast(Client, client))


async def test_a_failed_probe_is_not_cached() -> None:
    service = FakeService([RuntimeError("connection reset"), True])
    gate = gate_over(service)
    assert not await gate.reachable()
    # The next request probes again instead of inheriting the failure.
    assert await gate.reachable()
    assert len(service.calls) == 2
    # Transient errors are retried by the client within the probe's budget.
    assert all(call.get("retry") is True for call in service.calls)


async def test_a_healthy_answer_is_cached() -> None:
    service = FakeService([True])
    gate = gate_over(service)
    assert await gate.reachable()
    assert await gate.reachable()
    assert len(service.calls) == 1


async def test_not_serving_is_down() -> None:
    gate = gate_over(FakeService([False]))
    with pytest.raises(ServiceUnavailable):
        await gate.ensure()


async def test_a_burst_shares_one_probe() -> None:
    service = FakeService([True])
    gate = gate_over(service)
    answers = await asyncio.gather(*(gate.reachable() for _ in range(20)))
    assert all(answers)
    assert len(service.calls) == 1
