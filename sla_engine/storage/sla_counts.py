"""Scrape-time counts over the ticket tables: the SQL behind the `/metrics` SLA gauges.

Counted from the `tickets` / `ticket_metrics` rows at each scrape: always right, nothing to
keep in sync. A metric row still running whose `breach_at` has passed is reported apart
(`late`): the row reflects its last write, the clock keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sla_engine.storage.models import Ticket, TicketMetric

CLOSED_TICKET_STATUSES = ("solved", "closed")


@dataclass(frozen=True)
class MetricCount:
    """Metric rows of one (metric, stored status): how many, and how many are past breach."""

    metric: str
    status: str
    total: int
    late: int


def open_ticket_count(session: Session) -> int:
    """Tickets neither solved nor closed."""
    count = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.status.not_in(CLOSED_TICKET_STATUSES))
    )
    return int(count or 0)


def metric_counts(session: Session, now: datetime) -> list[MetricCount]:
    """Metric rows grouped by metric and stored status, with those whose breach is before `now`."""
    overdue = case((TicketMetric.breach_at < now, 1), else_=0)
    rows = session.execute(
        select(TicketMetric.metric, TicketMetric.status, func.count(), func.sum(overdue)).group_by(
            TicketMetric.metric, TicketMetric.status
        )
    ).all()
    return [
        MetricCount(str(metric), str(status), int(total), int(late or 0))
        for metric, status, total, late in rows
    ]
