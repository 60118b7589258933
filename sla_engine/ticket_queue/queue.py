"""`TicketQueue`: a page of the operator's queue (`GET /v1/tickets`) in one read transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from sla_engine.core.policies import Policy
from sla_engine.json_types import JsonObject
from sla_engine.ticket_queue import store
from sla_engine.ticket_queue.listing import Listing
from sla_engine.ticket_queue.views import CalendarLoader, MetricViews, page_view


class TicketQueue:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policies: Mapping[str, Policy],
        calendars: CalendarLoader,
    ) -> None:
        self.sessions = sessions
        self.policies = policies
        self.calendars = calendars

    def page(self, listing: Listing, now: datetime) -> JsonObject:
        """`{"items": [...], "next_cursor": str | None}` as of `now`."""
        with self.sessions() as session, session.begin():
            rows = store.page_rows(session, listing, now)
            metric_rows = store.metric_rows(session, [row.id for row in rows[: listing.limit]])
        views = MetricViews(now, self.policies, self.calendars)
        items, last = page_view(rows, metric_rows, views, listing.limit, listing.metric)
        cursor = None if last is None else listing.cursor_after(last.key, last.id)
        return {"items": items, "next_cursor": cursor}
