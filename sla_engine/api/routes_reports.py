"""`GET /v1/reports/attainment`: attainment of one SLA metric over the tickets created in a
window, as JSON numbers or as CSV rows (`format=csv` or `Accept: text/csv`).

The route is a plain function, so FastAPI runs it in its thread pool: a report over a long
window never holds up the event loop.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from sla_engine.api.deps import ServicesDep
from sla_engine.api.lookup import policy_named
from sla_engine.edge.requests import Instant
from sla_engine.report import CSV_COLUMNS, policy_limits, to_csv
from sla_engine.report_store import ReportWindow, load_report

router = APIRouter(tags=["reports"])

CSV_MEDIA = "text/csv"
ReportMetric = Literal["first_response", "next_response", "resolution"]


@router.get(
    "/reports/attainment",
    response_model=None,
    responses={
        200: {
            "description": "the numbers (JSON), or one CSV row per ticket metric in the window",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                CSV_MEDIA: {
                    "schema": {"type": "string"},
                    "example": ",".join(CSV_COLUMNS) + "\n",
                },
            },
        },
    },
)
def attainment_report(
    request: Request,
    services: ServicesDep,
    start: Annotated[
        Instant | None, Query(alias="from", description="default: `to` minus 30 days")
    ] = None,
    end: Annotated[Instant | None, Query(alias="to", description="default: now")] = None,
    policy: Annotated[str | None, Query(max_length=100, description="default: all")] = None,
    metric: Annotated[ReportMetric, Query(description="the SLA metric reported")] = (
        "first_response"
    ),
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="csv: one row per ticket metric (also with `Accept: text/csv`)"),
    ] = None,
) -> Response:
    """Share of the metric stopped within target and within breach, median and p90 business
    time to its stop (seconds), breaches per ISO week, for tickets created in [from, to).

    As CSV: a header, then one row per ticket metric (its current cycle): ticket_id, policy,
    metric, cycle, calendar, status (as now), started_at, stopped_at, target_at, breach_at (UTC),
    business_elapsed_s (as now for a running metric).
    """
    if policy is not None:
        policy_named(services, policy)
    now = services.clock()
    window = ReportWindow.resolve(start, end, policy, now, metric=metric)
    rows, summary = load_report(
        services.sessionmaker, window, now, services.tickets.calendars.calendar
    )
    if _wants_csv(request, format):
        return Response(to_csv(rows, now), media_type=CSV_MEDIA)
    limits: dict[str, float | None] = {}
    if policy is not None:
        target_s, breach_s = policy_limits(services.config.policies, metric, [policy])
        limits = {"target_s": target_s, "breach_s": breach_s}
    return JSONResponse({**window.to_json(), **limits, **summary.to_json()})


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == CSV_MEDIA for part in accept.split(","))
