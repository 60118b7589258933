"""Reading what the attainment report needs from storage (the numbers are in `report.py`).

A report covers the tickets *created* in [start, end), optionally of one policy (the policy in
force for the metric), through their stored first_response metric rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.errors import InputError
from sla_engine.report import Attainment, ResponseRow, attainment

REPORT_METRIC = "first_response"
DEFAULT_REPORT_SPAN = timedelta(days=30)
MAX_REPORT_SPAN = timedelta(days=3660)


@dataclass(frozen=True)
class ReportWindow:
    """Tickets created in [start, end), of `policy` (None: all policies)."""

    start: datetime
    end: datetime
    policy: str | None = None

    @classmethod
    def resolve(
        cls,
        start: datetime | None,
        end: datetime | None,
        policy: str | None,
        now: datetime,
        *,
        start_field: str = "from",
        end_field: str = "to",
    ) -> ReportWindow:
        """Defaults: `to` = now, `from` = `to` - 30 days; at most ten years."""
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
        return cls(begin, finish, policy)

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "policy": self.policy}


def response_rows(session: Session, window: ReportWindow) -> list[ResponseRow]:
    """The first_response rows of the tickets in `window`."""
    from sla_engine.storage.models import Ticket, TicketMetric

    query = (
        select(
            TicketMetric.started_at,
            TicketMetric.target_at,
            TicketMetric.breach_at,
            TicketMetric.stopped_at,
            TicketMetric.status,
            TicketMetric.business_elapsed_s,
        )
        .join(Ticket, Ticket.id == TicketMetric.ticket_id)
        .where(
            TicketMetric.metric == REPORT_METRIC,
            Ticket.created_at >= window.start,
            Ticket.created_at < window.end,
        )
    )
    if window.policy is not None:
        query = query.where(TicketMetric.policy == window.policy)
    return [ResponseRow(*row) for row in session.execute(query)]


def load_report(
    sessions: sessionmaker[Session], window: ReportWindow, now: datetime
) -> tuple[list[ResponseRow], Attainment]:
    with sessions() as session:
        rows = response_rows(session, window)
    return rows, attainment(rows, now)
