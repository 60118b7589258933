"""The ticket hook that keeps escalation timer rows in step with each ticket write.

Runs inside the ticket's transaction (after its metric rows are written), so a timer is
created, moved or cancelled atomically with the change that caused it. Every move or
cancel bumps the row's `generation`, which makes a firing that read the old row inert.

With `history=True` (bulk imports of past tickets) a threshold already due is recorded as
`skipped` instead of pending, so loading history pages nobody; rows planned that way carry
generation 0 and follow the ticket's latest state: one the state no longer plans is removed
rather than cancelled. The rows an import leaves are then those of each ticket's final state,
however its events were split into writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Unpack

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.config import Destination
from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.clock import Event, MetricState, TicketState
from sla_engine.core.policies import MetricPolicy, Policy
from sla_engine.escalation import outbox, store
from sla_engine.escalation.models import EscalationTimer
from sla_engine.escalation.planning import (
    PlannedTimer,
    is_paused,
    is_running,
    next_repeat_after,
    plan_repeat,
    plan_thresholds,
    repeat_number,
)
from sla_engine.storage.models import Ticket
from sla_engine.tickets import RecentCalendars, TicketCreate

Calendars = CalendarLookup


def default_calendars(name: str) -> BusinessCalendar:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


class EscalationTimerHook:
    """`TicketHook` that plans, moves and cancels a ticket's escalation timers."""

    def __init__(
        self,
        policies: Mapping[str, Policy],
        destinations: Mapping[str, Destination],
        *,
        calendars: Calendars = default_calendars,
        wake: Callable[[], None] | None = None,
        wake_within: timedelta = timedelta(seconds=5),
        history: bool = False,
    ) -> None:
        self.policies = policies
        self.history = history
        self.destinations = destinations
        # The default loader checks the calendar file on every call: re-check once a second.
        self.calendars: Calendars = (
            RecentCalendars(calendars) if calendars is default_calendars else calendars
        )
        self.wake = wake
        self.wake_within = wake_within
        # With no rule anywhere no timer can exist: ticket writes then skip the timer queries.
        self.enabled = any(
            mp.escalate or mp.repeat_after_breach
            for policy in policies.values()
            for mp in policy.metrics.values()
        )
        self.pagerduty = any(d.type == "pagerduty" for d in destinations.values())

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None:
        """Nothing to do before the first state is computed."""

    def on_event(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        """Timers follow the state (`on_state`), not single events."""

    def on_state(self, session: Session, ticket: Ticket, state: TicketState, now: datetime) -> None:
        if not self.enabled:
            return
        rows = store.timers_of_ticket(session, state.ticket_id)
        soonest = self._sync_ticket(
            session, state, rows, _SessionRows(session, self.calendars), now
        )
        self._wake_after_commit(session, soonest, now)

    def on_states(
        self, session: Session, items: Sequence[tuple[Any, TicketState]], now: datetime
    ) -> None:
        """`on_state` for many tickets (each at most once): their timer rows read with one
        query as plain rows, planned exactly as `on_state` plans them, and written back with
        one INSERT, one UPDATE and one DELETE (executemany) for all. ORM copies of timer rows
        in the session are flushed before and expired after (an import's new tickets)."""
        if not self.enabled or not items:
            return
        ids = [state.ticket_id for _, state in items]
        store.flush_timers(session)
        found = store.timer_rows_of_tickets(session, ids)
        writes = _BatchRows(self.calendars)
        soonest: datetime | None = None
        for _, state in items:
            due = self._sync_ticket(session, state, found[state.ticket_id], writes, now)
            soonest = _earliest(soonest, due)
        changed = [
            row
            for rows in found.values()
            for row in rows
            if row.id not in writes.removed and row.changed()
        ]
        store.write_timer_rows(session, writes.added, changed, sorted(writes.removed))
        store.expire_timers(session, set(ids))
        self._wake_after_commit(session, soonest, now)

    def _sync_ticket(
        self,
        session: Session,
        state: TicketState,
        rows: Sequence[AnyTimer],
        writes: _Rows,
        now: datetime,
    ) -> datetime | None:
        """Bring each metric's timer rows to the plan; the earliest pending due time."""
        policy = self.policies.get(state.policy)
        rows_by_metric: dict[str, list[AnyTimer]] = {}
        for row in rows:
            rows_by_metric.setdefault(row.metric, []).append(row)
        soonest: datetime | None = None
        for name, metric_state in state.metrics.items():
            metric_policy = policy.metrics.get(name) if policy is not None else None
            due = self._sync(
                session,
                writes,
                state.ticket_id,
                state.policy,
                metric_state,
                metric_policy,
                now,
                rows_by_metric.get(name, []),
            )
            soonest = _earliest(soonest, due)
        return soonest

    def _wake_after_commit(self, session: Session, soonest: datetime | None, now: datetime) -> None:
        if self.wake is not None and soonest is not None and soonest <= now + self.wake_within:
            wake = self.wake
            sa.event.listen(session, "after_commit", lambda _s: wake(), once=True)

    def sync_metric(
        self,
        session: Session,
        ticket_id: str,
        policy: str,
        metric_state: MetricState,
        metric_policy: MetricPolicy | None,
        now: datetime,
        rows: list[EscalationTimer] | None = None,
    ) -> datetime | None:
        """Bring one metric's timer rows to the plan; returns the earliest pending due time.

        `rows` are the metric's timer rows already read (and locked) by the caller; without
        them they are read here. Rows are written only where they differ from the plan."""
        if rows is None:
            rows = store.timers_of_ticket(session, ticket_id, metric_state.metric)
        return self._sync(
            session,
            _SessionRows(session, self.calendars),
            ticket_id,
            policy,
            metric_state,
            metric_policy,
            now,
            rows,
        )

    def _sync(
        self,
        session: Session,
        writes: _Rows,
        ticket_id: str,
        policy: str,
        metric_state: MetricState,
        metric_policy: MetricPolicy | None,
        now: datetime,
        rows: Sequence[AnyTimer],
    ) -> datetime | None:
        running = is_running(metric_state)
        planned = self._plan(writes, rows, metric_state, metric_policy, now) if running else []
        soonest = self._write_plan(writes, ticket_id, policy, metric_state, planned, rows, now)
        wanted = {(metric_state.cycle, p.threshold) for p in planned}
        self._drop_unplanned(writes, rows, wanted, now)
        # Deliveries exist only for fired timers (the firing step queues them; a replay or a
        # PagerDuty resolve follows a fired one): with none fired there is nothing to cancel
        # or resolve, and the queries that would do it are skipped.
        if any(row.status == "fired" for row in rows):
            self._follow_up_fired(session, ticket_id, metric_state, running, now)
        return soonest

    def _plan(
        self,
        writes: _Rows,
        rows: Sequence[AnyTimer],
        metric_state: MetricState,
        metric_policy: MetricPolicy | None,
        now: datetime,
    ) -> list[PlannedTimer]:
        """The timers a running metric should have: its thresholds and its next repeat."""
        if metric_policy is None or not (
            metric_policy.escalate or metric_policy.repeat_after_breach is not None
        ):
            return []
        calendar = writes.calendar(metric_state.calendar)
        planned = plan_thresholds(metric_state, metric_policy, calendar)
        history_now = now if self.history else None
        repeat = self._planned_repeat(rows, metric_state, metric_policy, history_now)
        if repeat is not None:
            planned.append(repeat)
        return planned

    def _write_plan(
        self,
        writes: _Rows,
        ticket_id: str,
        policy: str,
        metric_state: MetricState,
        planned: list[PlannedTimer],
        rows: Sequence[AnyTimer],
        now: datetime,
    ) -> datetime | None:
        """Create or move the row of each planned timer; returns the earliest pending one."""
        by_key = {(r.cycle, r.threshold): r for r in rows}
        soonest: datetime | None = None
        for item in planned:
            row = by_key.get((metric_state.cycle, item.threshold))
            if row is None:
                row = writes.add(
                    ticket_id=ticket_id,
                    metric=metric_state.metric,
                    cycle=metric_state.cycle,
                    policy=policy,
                    calendar=metric_state.calendar,
                    breach_at=metric_state.breach_at,
                    planned=item,
                    now=now,
                    generation=0 if self.history else 1,
                )
            elif self.history and self._from_history(row):
                self._replan(row, policy, metric_state, item, now)
            elif row.status in ("pending", "cancelled"):
                self._move(row, policy, metric_state, item, now)
            else:
                continue
            if self.history and item.due_at <= now:
                self._skip(row, now)
                continue
            soonest = item.due_at if soonest is None else min(soonest, item.due_at)
        return soonest

    def _drop_unplanned(
        self,
        writes: _Rows,
        rows: Sequence[AnyTimer],
        wanted: set[tuple[int, str]],
        now: datetime,
    ) -> None:
        """Cancel the pending rows the plan no longer has (history rows are removed)."""
        for row in rows:
            if (row.cycle, row.threshold) in wanted:
                continue
            if self.history and self._from_history(row):
                writes.remove(row)
            elif row.status == "pending":
                row.status = "cancelled"
                row.generation += 1
                row.updated_at = now

    def _follow_up_fired(
        self,
        session: Session,
        ticket_id: str,
        metric_state: MetricState,
        running: bool,
        now: datetime,
    ) -> None:
        """After a timer fired: a stopped metric cancels its queued notifications, and a
        PagerDuty incident of a cycle that is over is resolved."""
        if not running and not is_paused(metric_state):
            outbox.cancel_queued(
                session,
                ticket_id=ticket_id,
                metric=metric_state.metric,
                cycle=None,
                now=now,
                reason=f"metric {metric_state.status}",
            )
        if self.pagerduty:
            self._resolve_stopped_incidents(session, ticket_id, metric_state, running, now)

    @staticmethod
    def _from_history(row: AnyTimer) -> bool:
        """A row planned while loading history and not yet fired or moved by a live write."""
        return row.generation == 0 and row.status in ("pending", "skipped")

    @staticmethod
    def _skip(row: AnyTimer, now: datetime) -> None:
        if row.status != "skipped":
            row.status = "skipped"
            row.fired_at = now
            row.updated_at = now

    @staticmethod
    def _replan(
        row: AnyTimer,
        policy: str,
        metric_state: MetricState,
        item: PlannedTimer,
        now: datetime,
    ) -> None:
        """A history row follows the plan in place (still generation 0); one whose threshold
        moved ahead of now again is pending."""
        values = _planned_values(policy, metric_state, item)
        if row.status == "skipped" and item.due_at > now:
            values.update(status="pending", fired_at=None)
        _assign(row, values, now, new_generation=False)

    @staticmethod
    def _planned_repeat(
        rows: Sequence[AnyTimer],
        metric_state: MetricState,
        metric_policy: MetricPolicy,
        history_now: datetime | None = None,
    ) -> PlannedTimer | None:
        """Only the next repeat exists as a row: after the last one fired, or the one the
        firing step already materialised. Loading history (`history_now`), the next one is
        the first still ahead of now: the repeats before it are implied skipped."""
        repeat = metric_policy.repeat_after_breach
        if repeat is None:
            return None
        done = [0]
        waiting: list[int] = []
        for row in rows:
            number = repeat_number(row.threshold)
            if row.cycle != metric_state.cycle or number is None:
                continue
            if history_now is not None and row.generation == 0:
                continue
            (done if row.status in ("fired", "skipped") else waiting).append(number)
        if history_now is not None:
            ahead = next_repeat_after(metric_state.breach_at, repeat.every, 0, history_now)
            return plan_repeat(metric_state.breach_at, repeat, max(ahead, max(done) + 1))
        number = max([max(done) + 1, *(n for n in waiting if n > max(done))])
        return plan_repeat(metric_state.breach_at, repeat, number)

    @staticmethod
    def _move(
        row: AnyTimer,
        policy: str,
        metric_state: MetricState,
        item: PlannedTimer,
        now: datetime,
    ) -> None:
        """A live row follows the plan, pending, in a new generation (if anything changed)."""
        values = {"status": "pending", **_planned_values(policy, metric_state, item)}
        _assign(row, values, now, new_generation=True)

    def _resolve_stopped_incidents(
        self,
        session: Session,
        ticket_id: str,
        metric_state: MetricState,
        running: bool,
        now: datetime,
    ) -> None:
        """A PagerDuty `resolve` (same dedup_key) for every triggered cycle that is over."""
        triggered = store.triggered_incidents(session, ticket_id, metric_state.metric)
        for cycle, destination, in_flight_until in triggered:
            if running and cycle == metric_state.cycle:
                continue
            if is_paused(metric_state) and cycle == metric_state.cycle:
                continue
            payload = json.dumps(
                {
                    "ticket_id": ticket_id,
                    "metric": metric_state.metric,
                    "cycle": cycle,
                    "status": metric_state.status,
                }
            )
            # A trigger still being sent goes first: the resolve waits for its lease.
            not_before = max(now, in_flight_until or now)
            outbox.enqueue(
                session,
                outbox.new_delivery(
                    ticket_id=ticket_id,
                    metric=metric_state.metric,
                    cycle=cycle,
                    threshold="resolve",
                    destination=destination,
                    kind="resolve",
                    payload=payload,
                    due_at=now,
                    not_before=not_before,
                    now=now,
                ),
            )


AnyTimer = EscalationTimer | store.TimerRow
"""A timer row as the hook plans it: an ORM object (single writes) or plain values (batches)."""


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _planned_values(policy: str, metric_state: MetricState, item: PlannedTimer) -> dict[str, Any]:
    """The columns of a timer row that follow its plan (instants as plain UTC datetimes, as
    the rows read back: they compare with them in C, not through the calendar's own type)."""
    return {
        "due_at": _utc(item.due_at),
        "breach_at": _utc(metric_state.breach_at),
        "targets": store.targets_json(item),
        "policy": policy,
        "calendar": metric_state.calendar,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(instant: datetime) -> datetime:
    """The same instant as a plain `datetime` in UTC (exact: aware subtraction uses the
    offsets, the fold included)."""
    return _EPOCH + (instant - _EPOCH)


def _assign(row: AnyTimer, values: dict[str, Any], now: datetime, *, new_generation: bool) -> None:
    """Set `values` on the row if any differs (then `updated_at` is now, and with
    `new_generation` the generation grows, making a firing that read the row inert)."""
    if all(getattr(row, key) == value for key, value in values.items()):
        return
    for key, value in values.items():
        setattr(row, key, value)
    if new_generation:
        row.generation += 1
    row.updated_at = now


class _Rows(Protocol):
    """Where a write's plans find their calendars, where new rows go and dropped rows leave."""

    def calendar(self, name: str) -> BusinessCalendar: ...

    def add(self, **new: Unpack[store.NewTimer]) -> AnyTimer: ...

    def remove(self, row: AnyTimer) -> None: ...


class _SessionRows:
    """ORM rows of one ticket write: added to and deleted from the session."""

    def __init__(self, session: Session, calendars: Calendars) -> None:
        self.session = session
        self.calendar = calendars

    def add(self, **new: Unpack[store.NewTimer]) -> AnyTimer:
        return store.add_timer(self.session, **new)

    def remove(self, row: AnyTimer) -> None:
        self.session.delete(row)


class _BatchRows:
    """Plain rows of a batch: new ones kept to be inserted together, dropped ones by id."""

    def __init__(self, calendars: Calendars) -> None:
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
