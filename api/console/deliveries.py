"""Email deliveries of every kind (filter, re-send a code, link to each workflow in the
Temporal Web UI) and the live view of deliveries per second per queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.admin import deliveries
from api.admin.audit import Actor
from api.deps import DbSession, ServicesDep
from authflow.models import OtpDelivery, utcnow
from authflow.otp_store import code_state
from authflow.policies import (
    EMAIL_POLICIES,
    CodeState,
    DeliveryState,
    EmailKind,
    resolve_email_policies,
)
from authflow.settings import Settings

from .actions import act, record_id
from .live import WINDOW_SECONDS, live_rates
from .pages import PAGE_SIZE, Pager, choice, need, offset_param
from .session import ConsoleDep, PostedDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=2000)]
# Every delivery state, and "used" for codes.
STATES = [s.value for s in DeliveryState] + [CodeState.USED.value]
KINDS = [k.value for k in EmailKind]
IN_FLIGHT = frozenset({"pending", "sending", "retrying"})
# After a re-send, the new delivery row appears once its workflow has issued the code:
# keep refreshing the page this long after the click so that it shows up by itself.
RESEND_SETTLE = timedelta(seconds=30)


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the console shows it."""

    delivery: OtpDelivery
    state: str
    can_resend: bool
    next_try_at: datetime | None


# A replaced code whose record says one of these reads "superseded" (the pipeline's
# state of that name; records without it were marked "expired" when replaced).
_REPLACED_READS_SUPERSEDED = frozenset({"expired", "pending", "sending", "retrying"})


def shown_state(delivery: OtpDelivery) -> str:
    """What became of the delivery, in the contract's words ("delivered", "used" and
    "failed" stay: they say what happened to the email before it was replaced)."""
    state = code_state(delivery)  # "used" once the code was, else its email's state
    if delivery.superseded_at is not None and state in _REPLACED_READS_SUPERSEDED:
        return "superseded"
    return state


def next_try_estimate(delivery: OtpDelivery) -> datetime | None:
    """When a retrying delivery is tried again: its kind's backoff after the last failed
    attempt (a provider's own "try again in" hint may make it sooner or later)."""
    if delivery.state != "retrying" or delivery.attempts < 1:
        return None
    try:
        rules = EMAIL_POLICIES[EmailKind(delivery.kind)].retry
    except ValueError:
        return None
    delay = min(
        rules.initial_interval_seconds * rules.backoff_coefficient ** (delivery.attempts - 1),
        rules.maximum_interval_seconds,
    )
    return delivery.updated_at + timedelta(seconds=delay)


def delivery_rows(items: list[OtpDelivery], statuses: dict[str, str]) -> list[DeliveryRow]:
    return [
        DeliveryRow(
            delivery=d,
            state=shown_state(d),
            can_resend=deliveries.may_resend(d, statuses.get(d.user_id)),
            next_try_at=next_try_estimate(d),
        )
        for d in items
    ]


def in_flight(rows: list[DeliveryRow]) -> bool:
    """Anything on the page still moving: the page then refreshes itself."""
    settle_after = utcnow() - RESEND_SETTLE
    return any(
        row.state in IN_FLIGHT
        or (row.delivery.resend_requested_at is not None
            and row.delivery.resend_requested_at > settle_after)
        for row in rows
    )  # fmt: skip


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
    rows = delivery_rows(items, await deliveries.user_statuses(db, {d.user_id for d in items}))
    return render(
        request,
        "deliveries.html",
        {
            "rows": rows,
            "in_flight": in_flight(rows),
            "total": total,
            "state": chosen_state or "",
            "kind": chosen_kind or "",
            "states": STATES,
            "kinds": KINDS,
            "workflow_url": lambda wid: workflow_url(services.settings, wid),
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
