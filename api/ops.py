"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import os

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import text

from api.delivery_metrics import delivery_metrics
from api.deps import DbSession, ServicesDep
from authflow.policies import EMAIL_POLICIES

router = APIRouter(tags=["operations"])
READY_TIMEOUT = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is down; `down` names it"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when the database and Temporal answer, else 503 naming what is down."""
    checks = {"database": _check_database(services), "temporal": _check_temporal(services)}
    results = await asyncio.gather(*(_timed(c) for c in checks.values()))
    status = dict(zip(checks, results, strict=True))
    down = [name for name, ok in status.items() if not ok]
    body: dict[str, object] = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: "ok" if ok else "down" for name, ok in status.items()},
    }
    if down:
        body["down"] = down
        body["error"] = {"code": "service_unavailable", "message": f"down: {', '.join(down)}"}
    return JSONResponse(body, status_code=503 if down else 200)


async def _timed(check: asyncio.Future[None] | object) -> bool:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT)  # type: ignore[arg-type]
    except Exception:
        return False
    return True


async def _check_database(services: ServicesDep) -> None:
    async with services.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_temporal(services: ServicesDep) -> None:
    await services.temporal.service_client.check_health()


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep, db: DbSession) -> Response:
    """Prometheus text format: this process's metrics; with PROMETHEUS_MULTIPROC_DIR set,
    those of every authflow process on this host (the workers' email counters); the
    email deliveries of every queue, from their records; and the Temporal SDK metrics of
    the workers listed in WORKER_METRICS_URLS."""
    body = generate_latest(_registry()).decode()
    body += await delivery_metrics(db, EMAIL_POLICIES)
    urls = [u.strip() for u in services.settings.worker_metrics_urls.split(",") if u.strip()]
    if urls:
        body += "".join(await asyncio.gather(*(_worker_metrics(url) for url in urls)))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _worker_metrics(url: str) -> str:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(url)
            response.raise_for_status()
    except httpx.HTTPError:
        return f"# worker metrics unavailable: {url}\n"
    return f"# Temporal SDK metrics of worker {url}\n{response.text}"


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
