"""Email deliveries of every kind (filter, re-send a code, link to each workflow in the
Temporal Web UI) and the live view of deliveries per second per queue."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.admin import deliveries
from api.admin.audit import Actor
from api.deps import DbSession, ServicesDep
from authflow.otp_store import code_state
from authflow.policies import CodeState, DeliveryState, EmailKind, resolve_email_policies
from authflow.settings import Settings

from .actions import act, record_id
from .live import WINDOW_SECONDS, live_rates
from .pages import PAGE_SIZE, Pager, choice, need, offset_param
from .session import ConsoleDep, PostedDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(route_class=ConsoleRoute)

Text = Annotated[str | None, Query(max_length=2000)]
# Every delivery state, and "used" for codes.
STATES = [s.value for s in DeliveryState] + [CodeState.USED.value]
KINDS = [k.value for k in EmailKind]


def workflow_url(settings: Settings, workflow_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


@router.get("/deliveries")
async def deliveries_page(
    request: Request,
    console: ConsoleDep,
    db: DbSession,
    services: ServicesDep,
    state: Text = None,
    kind: Text = None,
    offset: Text = None,
) -> Response:
    need(console, "otp:manage")
    chosen_state, chosen_kind = choice(state, STATES), choice(kind, KINDS)
    start = offset_param(offset)
    items, total = await deliveries.list_deliveries(
        db,
        state=chosen_state or None,
        kind=EmailKind(chosen_kind) if chosen_kind else None,
        limit=PAGE_SIZE,
        offset=start,
        codes_only=False,
    )
    filters = {"state": chosen_state or "", "kind": chosen_kind or ""}
    query = urlencode({k: v for k, v in {**filters, "offset": offset or ""}.items() if v})
    return render(
        request,
        "deliveries.html",
        {
            "deliveries": items,
            "total": total,
            "state": chosen_state or "",
            "kind": chosen_kind or "",
            "states": STATES,
            "kinds": KINDS,
            "workflow_url": lambda wid: workflow_url(services.settings, wid),
            "view_state": code_state,
            "pager": Pager(f"{PREFIX}/deliveries", filters, start, total),
            "back": f"{PREFIX}/deliveries" + (f"?{query}" if query else ""),
        },
    )


@router.post("/deliveries/{delivery_id}/resend")
async def resend(
    delivery_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        sent = await deliveries.resend(db, services, actor, record_id(delivery_id, "delivery"))
        if sent:
            return "A fresh code is on its way; the old one no longer works."
        return "This delivery was already re-sent: re-send the newest one instead."

    return await act(posted, db, services.settings, "otp:manage", run, back=f"{PREFIX}/deliveries")


@router.get("/live")
async def live_page(request: Request, console: ConsoleDep, services: ServicesDep) -> Response:
    need(console, "otp:manage")
    policies = resolve_email_policies(services.settings.email_rate_limits)
    return render(
        request,
        "live.html",
        {"policies": list(policies.values()), "window": WINDOW_SECONDS},
    )


@router.get("/api/live")
async def live_data(console: ConsoleDep, db: DbSession, services: ServicesDep) -> Response:
    need(console, "otp:manage")
    policies = resolve_email_policies(services.settings.email_rate_limits)
    rates = await live_rates(db, policies)
    return JSONResponse(rates.as_json())
