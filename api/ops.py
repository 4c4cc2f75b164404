"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import text

from api.delivery_metrics import delivery_metrics
from api.deps import DbSession, ServicesDep
from api.errors import DEPENDENCY_ERRORS
from api.scraped_metrics import merge_scraped
from authflow.policies import EMAIL_POLICIES

router = APIRouter(tags=["operations"])
# Browser conveniences, kept out of the OpenAPI document.
static_router = APIRouter(include_in_schema=False)
READY_TIMEOUT = 3.0
FAVICON = Path(__file__).parent / "static" / "favicon.png"


@static_router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """Browsers ask every origin for it; a 404 on each console page is noise in the logs."""
    return FileResponse(FAVICON, media_type="image/png", headers={"Cache-Control": "max-age=86400"})


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
        body["error"] = {"code": "unavailable", "message": f"down: {', '.join(down)}"}
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(services: ServicesDep, db: DbSession) -> Response:
    """Prometheus text format: this process's metrics; with PROMETHEUS_MULTIPROC_DIR set,
    those of every authflow process on this host (the workers' email counters); the
    email deliveries of every queue, from their records; and the Temporal SDK metrics of
    the workers listed in WORKER_METRICS_URLS, each sample labelled with its `worker`.
    With the database down the rest is still served, and
    `authflow_metrics_database_up` says 0."""
    body = generate_latest(_registry()).decode()
    try:
        body += await delivery_metrics(db, EMAIL_POLICIES)
        database_up = 1
    except DEPENDENCY_ERRORS:
        database_up = 0
    body += (
        "# HELP authflow_metrics_database_up Whether this scrape could read the delivery"
        " records\n# TYPE authflow_metrics_database_up gauge\n"
        f"authflow_metrics_database_up {database_up}\n"
    )
    urls = [u.strip() for u in services.settings.worker_metrics_urls.split(",") if u.strip()]
    if urls:
        scraped = await asyncio.gather(*(_worker_metrics(url) for url in urls))
        body += "".join(
            f"# worker metrics unavailable: {url}\n" for url, text in scraped if not text
        )
        body += merge_scraped((url, text) for url, text in scraped if text)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _worker_metrics(url: str) -> tuple[str, str | None]:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(url)
            response.raise_for_status()
    except httpx.HTTPError:
        return url, None
    return url, response.text


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
