"""`GET /v1/tickets`: the operator's queue, filtered, ordered and paged by a keyset cursor.

A router of its own beside the ticket routes (`routes_tickets.py`: `POST /v1/tickets` and
the single-ticket routes); the query and its indexes live in `sla_engine.ticket_queue`.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sla_engine.api.deps import ServicesDep
from sla_engine.api.lookup import calendar_named, calendar_source, policy_named
from sla_engine.api.service_calls import call
from sla_engine.core.policies import METRICS
from sla_engine.edge.requests import Instant
from sla_engine.ticket_queue import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TicketQueue,
    make_listing,
)

router = APIRouter(tags=["queue"])

MetricName = Literal["first_response", "next_response", "resolution"]
assert set(get_args(MetricName)) == set(METRICS)


class QueueMetric(BaseModel):
    status: Literal["active", "paused", "achieved", "breached", "cancelled"]
    breach_at: str | None
    business_remaining_s: float | None = Field(
        description="business seconds left before breach_at at the time of the request; "
        "negative once breached"
    )


class QueueItem(BaseModel):
    id: str
    policy: str = Field(description="the policy in force")
    calendar: str | None = Field(description="the ticket's own calendar; null: the policy's")
    status: Literal["open", "pending", "solved", "closed"]
    created_at: str
    next_breach_at: str | None = Field(
        description="earliest breach_at among the running metrics (with metric=: that "
        "metric's); null when none runs"
    )
    metrics: dict[str, QueueMetric]


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null: last")


@router.get(
    "/tickets",
    response_model=None,
    responses={200: {"model": QueuePage, "description": "a page of the queue"}},
)
async def ticket_queue(
    request: Request,
    services: ServicesDep,
    status: Annotated[
        str | None,
        Query(
            max_length=100,
            description="comma-separated ticket statuses (open, pending, solved, closed) or "
            "`all`; default open,pending",
        ),
    ] = None,
    policy: Annotated[str | None, Query(max_length=100, description="policy in force")] = None,
    calendar: Annotated[
        str | None, Query(max_length=100, description="a running metric accrues in it")
    ] = None,
    metric: Annotated[
        MetricName | None,
        Query(description="only tickets where it runs; next_breach_at and order from it"),
    ] = None,
    breached: Annotated[
        Literal["true", "false"] | None,
        Query(
            description="true: any metric breached (running past breach_at or stopped "
            "after it); false: none"
        ),
    ] = None,
    breach_before: Annotated[
        Instant | None, Query(description="next_breach_at before this instant")
    ] = None,
    order: Annotated[
        Literal["breach_at", "-created_at"],
        Query(
            description="breach_at: soonest (most overdue) first, nothing running last; "
            "-created_at: newest first"
        ),
    ] = "breach_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="next_cursor of the previous page")
    ] = None,
) -> JSONResponse:
    """Tickets by time to breach (or newest first), with each metric's standing now."""
    if policy is not None:
        policy_named(services, policy)
    if calendar is not None:
        calendar_named(calendar, "calendar", source=calendar_source(services))
    listing = make_listing(
        status=status,
        policy=policy,
        calendar=calendar,
        metric=metric,
        breached=None if breached is None else breached == "true",
        breach_before=breach_before,
        order=order,
        limit=limit,
        cursor=cursor,
    )
    queue = TicketQueue(
        services.sessionmaker, services.config.policies, services.tickets.calendars.calendar
    )
    page = await call(request, queue.page, listing, services.clock())
    return JSONResponse(page)
