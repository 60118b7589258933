"""`GET /v1/reports/attainment`: first-response attainment of the tickets created in a window."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sla_engine.api.lookup import policy_named
from sla_engine.api.schemas import Instant
from sla_engine.report_store import REPORT_METRIC, ReportWindow, load_report

router = APIRouter(tags=["reports"])


@router.get("/reports/attainment")
def attainment_report(
    request: Request,
    start: Annotated[
        Instant | None, Query(alias="from", description="default: `to` minus 30 days")
    ] = None,
    end: Annotated[Instant | None, Query(alias="to", description="default: now")] = None,
    policy: Annotated[str | None, Query(max_length=100, description="default: all")] = None,
) -> dict[str, Any]:
    """Share answered within target and within breach, median and p90 business time to first
    response (seconds), breaches per ISO week, for tickets created in [from, to)."""
    services = request.app.state.services
    limits: dict[str, float | None] = {}
    if policy is not None:
        metric = policy_named(services, policy).metrics.get(REPORT_METRIC)
        if metric is not None:
            target = metric.target
            limits = {
                "target_s": None if target is None else target.total_seconds(),
                "breach_s": metric.breach.total_seconds(),
            }
    now = services.clock()
    window = ReportWindow.resolve(start, end, policy, now)
    _, summary = load_report(services.sessionmaker, window, now)
    return {**window.to_json(), "metric": REPORT_METRIC, **limits, **summary.to_json()}
