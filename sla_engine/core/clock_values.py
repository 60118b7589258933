"""The values the SLA clock reads and answers: events, and metric and ticket states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sla_engine.core.business_calendar import BusinessCalendar
from sla_engine.core.times import is_aware, iso

Status = Literal["active", "paused", "achieved", "breached", "cancelled"]
TicketStatus = Literal["open", "pending", "solved", "closed"]

ZERO = timedelta(0)


@dataclass(frozen=True)
class Event:
    """One entry of a ticket's log. ``seq`` is the arrival order (breaks ties)."""

    event_id: str
    type: str
    occurred_at: datetime
    seq: int = 0
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricState:
    """A metric's current cycle, evaluated at an instant."""

    metric: str
    status: Status
    cycle: int
    calendar: str
    started_at: datetime
    target_at: datetime | None
    breach_at: datetime
    stopped_at: datetime | None
    business_elapsed_s: float
    business_remaining_s: float
    calendar_remaining_s: float
    breach: timedelta
    target: timedelta | None = None
    running: bool = False
    paused: bool = False
    clock_start: datetime | None = None
    budget_offset: timedelta = ZERO

    def when_spent(self, spent: timedelta, calendar: BusinessCalendar) -> datetime:
        """When this metric's spent business time reaches ``spent`` if it runs on unpaused
        from now (e.g. the 75% escalation: ``when_spent(0.75 * breach, cal)``).
        ``calendar`` is this metric's calendar. A point already passed before the current
        clock began answers the clock's start."""
        start = self.clock_start or self.started_at
        budget = spent - self.budget_offset
        if budget < ZERO:
            return start
        return calendar.add(start, budget)

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        """The API's shape; ``details`` adds cycle, calendar, durations and flags."""
        body: dict[str, Any] = {
            "status": self.status,
            "started_at": iso(self.started_at),
            "target_at": iso(self.target_at),
            "breach_at": iso(self.breach_at),
            "stopped_at": iso(self.stopped_at),
            "business_elapsed_s": float(self.business_elapsed_s),
            "business_remaining_s": float(self.business_remaining_s),
            "calendar_remaining_s": float(self.calendar_remaining_s),
        }
        if details:
            body.update(
                cycle=self.cycle,
                calendar=self.calendar,
                breach_s=self.breach.total_seconds(),
                target_s=None if self.target is None else self.target.total_seconds(),
                running=self.running,
                paused=self.paused,
            )
        return body


_METRIC_FIELDS = frozenset(MetricState.__dataclass_fields__)


def metric_state(**fields: Any) -> MetricState:
    """``MetricState(**fields)`` with every field given, built without the frozen class's
    per-field ``object.__setattr__`` (the clock answers one per metric and ticket)."""
    if fields.keys() != _METRIC_FIELDS:
        return MetricState(**fields)  # a missing or unknown field: the usual TypeError
    state = object.__new__(MetricState)
    state.__dict__.update(fields)
    return state


@dataclass(frozen=True)
class TicketState:
    """A ticket's SLA state at an instant: the policy in force and each metric's last cycle.

    ``calendar`` is the ticket's own calendar in force (None: the policy's calendars apply)."""

    ticket_id: str
    policy: str
    metrics: Mapping[str, MetricState]
    status: TicketStatus = "open"
    first_response_at: datetime | None = None
    calendar: str | None = None

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "policy": self.policy,
            "metrics": {name: m.to_json(details=details) for name, m in self.metrics.items()},
        }


def require_aware(value: object, name: str) -> datetime:
    """`value` as an instant, else a `TypeError` naming `name` (the clock's own arguments are
    programming errors; request fields use `times.require_aware`, an `InputError`)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if not is_aware(value):
        raise TypeError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value
