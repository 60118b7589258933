"""Timer rows as the hook edits them, and where a write's new and dropped rows go.

A row is an ORM object (`EscalationTimer`, a single ticket write) or plain values
(`store.TimerRow`, a batch); both are edited the same way here. `TimerWrites` is where a
write's plans find their calendars, where new rows go and dropped rows leave:
`SessionTimerWrites` for one ticket's write, `BatchTimerWrites` for many tickets at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, Unpack

from sqlalchemy.orm import Session

from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.clock import MetricState
from sla_engine.escalation import store
from sla_engine.escalation.models import EscalationTimer
from sla_engine.escalation.planning import PlannedTimer

AnyTimer = EscalationTimer | store.TimerRow
"""A timer row as the hook plans it: an ORM object (single writes) or plain values (batches)."""

PlannedValue = datetime | str
"""A column value that follows a row's plan: an instant, or text (a name, JSON, a status)."""


def from_history(row: AnyTimer) -> bool:
    """A row planned while loading history and not yet fired or moved by a live write."""
    return row.generation == 0 and row.status in ("pending", "skipped")


def skip(row: AnyTimer, now: datetime) -> None:
    """Record the row as `skipped` (a threshold already due while loading history)."""
    if row.status != "skipped":
        row.status = "skipped"
        row.fired_at = now
        row.updated_at = now


def replan(
    row: AnyTimer,
    policy: str,
    metric_state: MetricState,
    item: PlannedTimer,
    now: datetime,
) -> None:
    """A history row follows the plan in place (still generation 0); one whose threshold
    moved ahead of now again is pending."""
    values = planned_values(policy, metric_state, item)
    if row.status == "skipped" and item.due_at > now:
        values.update(status="pending", fired_at=None)
    _assign(row, values, now, new_generation=False)


def move(
    row: AnyTimer,
    policy: str,
    metric_state: MetricState,
    item: PlannedTimer,
    now: datetime,
) -> None:
    """A live row follows the plan, pending, in a new generation (if anything changed)."""
    values = {"status": "pending", **planned_values(policy, metric_state, item)}
    _assign(row, values, now, new_generation=True)


def cancel(row: AnyTimer, now: datetime) -> None:
    """A pending row the plan no longer has: cancelled, in a new generation."""
    row.status = "cancelled"
    row.generation += 1
    row.updated_at = now


def planned_values(
    policy: str, metric_state: MetricState, item: PlannedTimer
) -> dict[str, PlannedValue | None]:
    """The columns of a timer row that follow its plan (instants as plain UTC datetimes, as
    the rows read back: they compare with them in C, not through the calendar's own type)."""
    return {
        "due_at": utc(item.due_at),
        "breach_at": utc(metric_state.breach_at),
        "targets": store.targets_json(item),
        "policy": policy,
        "calendar": metric_state.calendar,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(instant: datetime) -> datetime:
    """The same instant as a plain `datetime` in UTC (exact: aware subtraction uses the
    offsets, the fold included), which compares in C."""
    return _EPOCH + (instant - _EPOCH)


def _assign(
    row: AnyTimer,
    values: dict[str, PlannedValue | None],
    now: datetime,
    *,
    new_generation: bool,
) -> None:
    """Set `values` on the row if any differs (then `updated_at` is now, and with
    `new_generation` the generation grows, making a firing that read the row inert)."""
    if all(getattr(row, key) == value for key, value in values.items()):
        return
    for key, value in values.items():
        setattr(row, key, value)
    if new_generation:
        row.generation += 1
    row.updated_at = now


class TimerWrites(Protocol):
    """Where a write's plans find their calendars, where new rows go and dropped rows leave."""

    def calendar(self, name: str) -> BusinessCalendar: ...

    def add(self, **new: Unpack[store.NewTimer]) -> AnyTimer: ...

    def remove(self, row: AnyTimer) -> None: ...


class SessionTimerWrites:
    """ORM rows of one ticket write: added to and deleted from the session."""

    def __init__(self, session: Session, calendars: CalendarLookup) -> None:
        self.session = session
        self.calendar = calendars

    def add(self, **new: Unpack[store.NewTimer]) -> AnyTimer:
        return store.add_timer(self.session, **new)

    def remove(self, row: AnyTimer) -> None:
        self.session.delete(row)


class BatchTimerWrites:
    """Plain rows of a batch: new ones kept to be inserted together, dropped ones by id."""

    def __init__(self, calendars: CalendarLookup) -> None:
        self.calendars = calendars
        self.known: dict[str, BusinessCalendar] = {}
        self.added: list[store.TimerRow] = []
        self.removed: set[int] = set()

    def calendar(self, name: str) -> BusinessCalendar:
        """The calendar, looked up once per batch (one transaction: the same versions)."""
        found = self.known.get(name)
        if found is None:
            found = self.known[name] = self.calendars(name)
        return found

    def add(self, **new: Unpack[store.NewTimer]) -> AnyTimer:
        row = store.TimerRow(id=None, **store.timer_values(**new))
        self.added.append(row)
        return row

    def remove(self, row: AnyTimer) -> None:
        assert row.id is not None  # only rows read are dropped
        self.removed.add(row.id)
