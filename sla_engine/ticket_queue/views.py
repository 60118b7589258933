"""A queue page as JSON: each ticket with its metrics as they stand at the request's `now`.

Stored metric rows are as of the ticket's last write; what time alone changes is worked out
here, so that an item says what `GET /v1/tickets/{id}/sla` would say now:

- a running active metric past its `breach_at` is `breached`, and its business time remaining
  is `calendar.elapsed(now, breach_at)` (negative once breached);
- a paused metric's remaining time does not move (its breach budget less the business time
  spent), while its `breach_at` recedes: it is `calendar.add(now, remaining)`;
- a stopped metric's remaining time is its budget less the business time it spent.

Instants are given in the metric calendar's zone, as the ticket's own SLA view does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol, TypeVar

from sla_engine.core.business_calendar import BusinessCalendar
from sla_engine.core.policies import Policy
from sla_engine.errors import SlaEngineError
from sla_engine.json_types import JsonObject


class ZonedCalendar(BusinessCalendar, Protocol):
    """A calendar with its time zone (the zone a metric's instants are given in)."""

    @property
    def tz(self) -> tzinfo: ...


CalendarLoader = Callable[[str], ZonedCalendar]


class QueueRow(Protocol):
    """A ticket as the page's query reads it."""

    @property
    def id(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def calendar(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


Row = TypeVar("Row", bound=QueueRow)


class MetricRow(Protocol):
    """A stored metric row of a listed ticket (`ticket_metrics`)."""

    @property
    def ticket_id(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def calendar(self) -> str: ...
    @property
    def breach_at(self) -> datetime: ...
    @property
    def stopped_at(self) -> datetime | None: ...
    @property
    def business_elapsed_s(self) -> float: ...
    @property
    def updated_at(self) -> datetime: ...


class MetricViews:
    """Metric rows seen at one instant, with the calendars and policies they need."""

    def __init__(
        self, now: datetime, policies: Mapping[str, Policy], calendars: CalendarLoader
    ) -> None:
        self.now = now
        self.policies = policies
        self.calendars = calendars
        self._seen: dict[str, ZonedCalendar | None] = {}

    def calendar(self, name: str) -> ZonedCalendar | None:
        if name not in self._seen:
            try:
                self._seen[name] = self.calendars(name)
            except (SlaEngineError, OSError, ValueError):
                self._seen[name] = None  # gone from the service: stored values, in UTC
        return self._seen[name]

    def zone(self, name: str) -> tzinfo:
        cal = self.calendar(name)
        return UTC if cal is None else cal.tz

    def status(self, row: MetricRow) -> str:
        if row.stopped_at is None and row.status == "active" and self.now > row.breach_at:
            return "breached"
        return str(row.status)

    def breach_at(self, row: MetricRow) -> datetime:
        """The row's breach_at now: a paused metric's is where it would fall if resumed now."""
        cal = self.calendar(row.calendar)
        if row.stopped_at is None and row.status == "paused" and cal is not None:
            left = self.remaining(row)
            if left is not None and left > 0:
                return cal.add(self.now, timedelta(seconds=left))
        return row.breach_at

    def remaining(self, row: MetricRow) -> float | None:
        cal = self.calendar(row.calendar)
        if row.stopped_at is None and row.status != "paused" and cal is not None:
            return float(cal.elapsed(self.now, row.breach_at).total_seconds())
        budget = self.budget(row.policy, row.metric)
        if budget is not None:
            return budget - float(row.business_elapsed_s)
        if cal is None:
            return None
        since = row.stopped_at if row.stopped_at is not None else row.updated_at
        return float(cal.elapsed(since, row.breach_at).total_seconds())

    def budget(self, policy: str, metric: str) -> float | None:
        found = self.policies.get(policy)
        rules = None if found is None else found.metrics.get(metric)
        return None if rules is None else rules.breach.total_seconds()

    def view(self, row: MetricRow) -> JsonObject:
        return {
            "status": self.status(row),
            "breach_at": _iso(self.breach_at(row), self.zone(row.calendar)),
            "business_remaining_s": self.remaining(row),
        }


def page_view(
    rows: Sequence[Row],
    metric_rows: Iterable[MetricRow],
    views: MetricViews,
    limit: int,
    metric: str | None = None,
) -> tuple[list[JsonObject], Row | None]:
    """The page's items, and the last listed row when another page follows (else None)."""
    shown = rows[:limit]
    metrics: dict[str, dict[str, MetricRow]] = {}
    for metric_row in metric_rows:
        metrics.setdefault(metric_row.ticket_id, {})[metric_row.metric] = metric_row
    items = [_item(row, metrics.get(row.id, {}), views, metric) for row in shown]
    return items, (shown[-1] if len(rows) > limit else None)


def _item(
    row: QueueRow, metrics: Mapping[str, MetricRow], views: MetricViews, metric: str | None
) -> JsonObject:
    return {
        "id": row.id,
        "policy": row.policy,
        "calendar": row.calendar,
        "status": row.status,
        "created_at": _iso(row.created_at, UTC),
        "next_breach_at": _next_breach(metrics, views, metric),
        "metrics": {name: views.view(metrics[name]) for name in sorted(metrics)},
    }


def _next_breach(
    metrics: Mapping[str, MetricRow], views: MetricViews, metric: str | None
) -> str | None:
    """The earliest breach_at of the running metrics (of `metric` alone when given): those
    whose clock runs first; only when all are paused, the paused ones' as of now."""
    running = [
        m
        for name, m in metrics.items()
        if m.stopped_at is None and (metric is None or name == metric)
    ]
    ticking = [m for m in running if m.status != "paused"]
    if ticking:
        first = min(ticking, key=lambda m: m.breach_at)
        return _iso(first.breach_at, views.zone(first.calendar))
    if running:
        paused = [(views.breach_at(m), m) for m in running]
        when, first = min(paused, key=lambda pair: pair[0])
        return _iso(when, views.zone(first.calendar))
    return None


def _iso(value: datetime | None, zone: tzinfo) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat()
