"""Operations endpoints: health, readiness (naming what is down), Prometheus metrics."""

from __future__ import annotations

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.flows import code_workflow_id
from authflow.policies import DeliveryState
from authflow.ports import free_port
from authflow.settings import Settings
from authflow.temporal import connect
from tests.secret import TEST_SECRET
from tests.stack import Stack, eventually

pytestmark = pytest.mark.e2e


async def test_health_and_ready(stack: Stack) -> None:
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_metrics_count_emails_and_requests(stack: Stack) -> None:
    mark = stack.sink.last_id
    email = stack.new_email("metrics")
    await stack.register(email)
    await stack.wait_for_mail(email, after_id=mark)

    async def sent_metric() -> str | None:
        text = (await stack.http.get("/metrics")).text
        return text if 'authflow_emails_sent_total{kind="register"}' in text else None

    text = await eventually(sent_metric)
    families = {f.name: f for f in text_string_to_metric_families(text)}  # valid as a whole
    assert families["authflow_metrics_database_up"].samples[0].value == 1
    assert 'authflow_email_time_to_smtp_seconds_bucket{kind="register"' in text
    assert 'route="/api/v1/auth/register",status="202"' in text
    assert "# TYPE authflow_emails_failed_total counter" in text


async def test_readyz_names_what_is_down(tmp_path: object) -> None:
    dead_temporal = f"127.0.0.1:{free_port()}"
    settings = Settings(
        environment="test",
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
        temporal_address=dead_temporal,
        jwt_secret=TEST_SECRET,
    )
    client = await connect(settings, lazy=True)
    app = create_app(settings, temporal=client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    import asyncio

    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert sorted(ready.json()["down"]) == ["database", "temporal"]
            assert ready.json()["error"]["code"] == "unavailable"
            # A registration while everything is down: a clear 503, not a 500.
            r = await http.post(
                "/api/v1/auth/register",
                json={"email": "down@example.com", "password": "long enough pass"},
            )
            assert r.status_code == 503, r.text
            # The metrics are still served, and say the database could not be read.
            scrape = await http.get("/metrics")
            assert scrape.status_code == 200, scrape.text
            families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
            assert families["authflow_metrics_database_up"].samples[0].value == 0
    finally:
        server.should_exit = True
        await task


async def test_ops_find_a_registration_by_its_search_attributes(stack: Stack) -> None:
    """The README's visibility queries work on the embedded server (which caches the
    attributes' types, see ``devtools.temporal_server.DYNAMIC_CONFIG``)."""
    email = stack.new_email("visible")
    mark = stack.sink.last_id
    response = await stack.register(email)
    user_id = response.json()["user_id"]
    await stack.wait_for_mail(email, after_id=mark)
    query = (
        f'AuthflowKind="register" AND AuthflowUserId="{user_id}" '
        f'AND AuthflowDeliveryState="{DeliveryState.DELIVERED}"'
    )

    async def found() -> list[str] | None:
        ids = [wf.id async for wf in stack.client.list_workflows(query)]
        return ids or None

    assert await eventually(found) == [code_workflow_id("register", user_id)]


async def test_a_code_email_being_retried_shows_retrying(stack: Stack) -> None:
    """docs/operations.md's query for codes whose email is being retried finds one
    while the provider refuses it (451), and the same workflow shows delivered once the
    provider takes it on the next attempt."""
    email = stack.new_email("retried")
    mark = stack.sink.last_id

    async def states(user_id: str, state: DeliveryState) -> list[str] | None:
        query = (
            f'AuthflowKind="register" AND AuthflowUserId="{user_id}" '
            f'AND AuthflowDeliveryState="{state}"'
        )
        ids = [wf.id async for wf in stack.client.list_workflows(query)]
        return ids or None

    async def retried_total() -> float:
        text = (await stack.http.get("/metrics")).text
        line = 'authflow_emails_retried_total{kind="register"} '
        return sum(float(x[len(line) :]) for x in text.splitlines() if x.startswith(line))

    retried_before = await retried_total()
    stack.sink.faults.mode = "transient"
    try:
        user_id = (await stack.register(email)).json()["user_id"]
        retrying = await eventually(lambda: states(user_id, DeliveryState.RETRYING))
    finally:
        stack.sink.faults.reset()
    assert retrying == [code_workflow_id("register", user_id)]
    await stack.wait_for_mail(email, after_id=mark)
    assert await eventually(lambda: states(user_id, DeliveryState.DELIVERED)) == retrying
    # Counted as delivered after a retry, although the retry was a second activity whose
    # own attempt number starts at 1 again (the record counts the email's attempts).
    assert await retried_total() >= retried_before + 1
