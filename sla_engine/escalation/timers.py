"""The ticket hook that keeps escalation timer rows in step with each ticket write.

Runs inside the ticket's transaction (after its metric rows are written), so a timer is
created, moved or cancelled atomically with the change that caused it. Every move or
cancel bumps the row's `generation`, which makes a firing that read the old row inert.

With `history=True` (bulk imports of past tickets) a threshold already due is recorded as
`skipped` instead of pending, so loading history pages nobody; rows planned that way carry
generation 0 and follow the ticket's latest state: one the state no longer plans is removed
rather than cancelled. The rows an import leaves are then those of each ticket's final state,
however its events were split into writes.

The hook runs the steps of its neighbours: `metric_timers.py` brings one metric's rows to its
plan, `timer_rows.py` edits the rows (ORM objects of one write, plain rows of a batch) and
`fired_timers.py` follows up on timers that already fired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.config import Destination
from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.clock import Event, MetricState, TicketState
from sla_engine.core.policies import MetricPolicy, Policy
from sla_engine.escalation import store
from sla_engine.escalation.fired_timers import follow_up_fired
from sla_engine.escalation.metric_timers import follow_plan
from sla_engine.escalation.models import EscalationTimer
from sla_engine.escalation.planning import is_running
from sla_engine.escalation.timer_rows import (
    AnyTimer,
    BatchTimerWrites,
    SessionTimerWrites,
    TimerWrites,
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
            RecentCalendars() if calendars is default_calendars else calendars
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
            session, state, rows, SessionTimerWrites(session, self.calendars), now
        )
        self._wake_after_commit(session, soonest, now)

    def on_states(
        self, session: Session, items: Sequence[tuple[object, TicketState]], now: datetime
    ) -> None:
        """`on_state` for many tickets (each at most once): their timer rows read with one
        query as plain rows, planned exactly as `on_state` plans them, and written back with
        one INSERT, one DELETE and an UPDATE of the columns that changed (executemany) for
        all; unchanged rows are not written. ORM copies of timer rows
        in the session are flushed before and expired after (an import's new tickets)."""
        if not self.enabled or not items:
            return
        ids = [state.ticket_id for _, state in items]
        store.flush_timers(session)
        found = store.timer_rows_of_tickets(session, ids)
        writes = BatchTimerWrites(self.calendars)
        soonest: datetime | None = None
        for _, state in items:
            due = self._sync_ticket(session, state, found[state.ticket_id], writes, now)
            soonest = _earliest(soonest, due)
        kept = [row for rows in found.values() for row in rows if row.id not in writes.removed]
        store.write_timer_rows(session, writes.added, kept, sorted(writes.removed))
        store.expire_timers(session, set(ids))
        self._wake_after_commit(session, soonest, now)

    def _sync_ticket(
        self,
        session: Session,
        state: TicketState,
        rows: Sequence[AnyTimer],
        writes: TimerWrites,
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
            SessionTimerWrites(session, self.calendars),
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
        writes: TimerWrites,
        ticket_id: str,
        policy: str,
        metric_state: MetricState,
        metric_policy: MetricPolicy | None,
        now: datetime,
        rows: Sequence[AnyTimer],
    ) -> datetime | None:
        running = is_running(metric_state)
        soonest = follow_plan(
            writes,
            ticket_id,
            policy,
            metric_state,
            metric_policy,
            now,
            rows,
            running=running,
            history=self.history,
        )
        # Deliveries exist only for fired timers (the firing step queues them; a replay or a
        # PagerDuty resolve follows a fired one): with none fired there is nothing to cancel
        # or resolve, and the queries that would do it are skipped.
        if any(row.status == "fired" for row in rows):
            follow_up_fired(
                session, ticket_id, metric_state, running, now, pagerduty=self.pagerduty
            )
        return soonest


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
