"""Reading what the attainment report needs from storage (the numbers are in `report.py`).

A report covers the tickets *created* in [start, end), optionally of one policy (the policy in
force for the metric), through their stored rows of one metric (`first_response` by default,
`next_response`, `resolution`): each ticket's current cycle of it.

A stored row is as of the ticket's last write. For a running, unpaused metric the business
time spent goes on with the clock: it is brought to `now` with its calendar (the time between
the row's last change and `now`; nothing else about the metric has changed since).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.core.business_calendar import CalendarLookup
from sla_engine.errors import InputError, SlaEngineError
from sla_engine.json_types import JsonObject
from sla_engine.report import REPORT_METRICS, Attainment, MetricRow, attainment

DEFAULT_METRIC = "first_response"
DEFAULT_REPORT_SPAN = timedelta(days=30)
MAX_REPORT_SPAN = timedelta(days=3660)


@dataclass(frozen=True)
class ReportWindow:
    """Tickets created in [start, end), of `policy` (None: all policies), through `metric`."""

    start: datetime
    end: datetime
    policy: str | None = None
    metric: str = DEFAULT_METRIC

    @classmethod
    def resolve(
        cls,
        start: datetime | None,
        end: datetime | None,
        policy: str | None,
        now: datetime,
        *,
        metric: str = DEFAULT_METRIC,
        start_field: str = "from",
        end_field: str = "to",
        metric_field: str = "metric",
    ) -> ReportWindow:
        """Defaults: `to` = now, `from` = `to` - 30 days; at most ten years."""
        if metric not in REPORT_METRICS:
            raise InputError(
                f"{metric_field} {metric!r} must be one of {', '.join(REPORT_METRICS)}",
                field=metric_field,
                value=metric,
            )
        finish = end if end is not None else now
        begin = start if start is not None else finish - DEFAULT_REPORT_SPAN
        if finish < begin:
            raise InputError(
                f"{end_field} {finish.isoformat()} is before {start_field} {begin.isoformat()}",
                field=end_field,
                value=finish.isoformat(),
            )
        if finish - begin > MAX_REPORT_SPAN:
            raise InputError(
                f"{end_field}: a report spans at most {MAX_REPORT_SPAN.days} days",
                field=end_field,
                value=finish.isoformat(),
            )
        return cls(begin, finish, policy, metric)

    def to_json(self) -> JsonObject:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "policy": self.policy,
            "metric": self.metric,
        }


def metric_rows(session: Session, window: ReportWindow) -> list[tuple[MetricRow, datetime]]:
    """The window's rows of its metric, each with the instant its row last changed."""
    from sla_engine.storage.models import Ticket, TicketMetric

    query = (
        select(
            TicketMetric.started_at,
            TicketMetric.target_at,
            TicketMetric.breach_at,
            TicketMetric.stopped_at,
            TicketMetric.status,
            TicketMetric.business_elapsed_s,
            TicketMetric.ticket_id,
            TicketMetric.policy,
            TicketMetric.metric,
            TicketMetric.cycle,
            TicketMetric.calendar,
            TicketMetric.updated_at,
        )
        .join(Ticket, Ticket.id == TicketMetric.ticket_id)
        .where(
            TicketMetric.metric == window.metric,
            Ticket.created_at >= window.start,
            Ticket.created_at < window.end,
        )
        .order_by(Ticket.created_at, TicketMetric.ticket_id)
    )
    if window.policy is not None:
        query = query.where(TicketMetric.policy == window.policy)
    return [(MetricRow(*row[:-1]), row[-1]) for row in session.execute(query)]


def spent_by(
    row: MetricRow, changed_at: datetime, now: datetime, calendars: CalendarLookup
) -> MetricRow:
    """`row` with its business time brought to `now` when it runs unpaused."""
    if row.status != "active" and not (row.status == "breached" and row.stopped_at is None):
        return row
    if now <= changed_at:
        return row
    try:
        more = calendars(row.calendar).elapsed(changed_at, now).total_seconds()
    except (SlaEngineError, OSError, ValueError):
        return row  # its calendar is gone: the stored value is the best known
    return replace(row, business_elapsed_s=row.business_elapsed_s + more)


def load_report(
    sessions: sessionmaker[Session],
    window: ReportWindow,
    now: datetime,
    calendars: CalendarLookup | None = None,
) -> tuple[list[MetricRow], Attainment]:
    """The window's rows (business time as of `now` when `calendars` is given) and numbers."""
    with sessions() as session:
        found = metric_rows(session, window)
    if calendars is None:
        rows = [row for row, _ in found]
    else:
        rows = [spent_by(row, changed_at, now, calendars) for row, changed_at in found]
    return rows, attainment(rows, now)
