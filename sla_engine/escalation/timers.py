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
from sqlalchemy.engine import Connection
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
        planned = self.prepare_states(session, items, now)
        if planned is not None:
            planned.write(session, set())

    def prepare_states(
        self,
        reader: Session | Connection,
        items: Sequence[tuple[object, TicketState]],
        now: datetime,
    ) -> PlannedTimers | None:
        """The planning half of `on_states`, nothing written: the timer rows read from
        `reader` (a session: locked; a plain connection: outside the write transaction, and
        `PlannedTimers.changed` then tells which tickets' rows moved since)."""
        if not self.enabled or not items:
            return None
        ids = [state.ticket_id for _, state in items]
        if isinstance(reader, Session):
            store.flush_timers(reader)
        found = store.timer_rows_of_tickets(reader, ids)
        planned = PlannedTimers(self, ids, found, BatchTimerWrites(self.calendars), now)
        for _, state in items:
            due = self._sync_ticket(
                None, state, found[state.ticket_id], planned.writes, now, planned.fired
            )
            planned.soonest = _earliest(planned.soonest, due)
        return planned

    def _sync_ticket(
        self,
        session: Session | None,
        state: TicketState,
        rows: Sequence[AnyTimer],
        writes: TimerWrites,
        now: datetime,
        fired: list[tuple[str, MetricState, bool]] | None = None,
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
                fired,
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
        session: Session | None,
        writes: TimerWrites,
        ticket_id: str,
        policy: str,
        metric_state: MetricState,
        metric_policy: MetricPolicy | None,
        now: datetime,
        rows: Sequence[AnyTimer],
        fired: list[tuple[str, MetricState, bool]] | None = None,
    ) -> datetime | None:
        """One metric's rows to its plan; with `fired` given (a batch planned before it is
        written) the follow-up of fired timers is collected there, not run (no session)."""
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
            if fired is not None:
                fired.append((ticket_id, metric_state, running))
            else:
                assert session is not None
                follow_up_fired(
                    session, ticket_id, metric_state, running, now, pagerduty=self.pagerduty
                )
        return soonest


class PlannedTimers:
    """The timer rows of a batch planned by `EscalationTimerHook.prepare_states`, to write."""

    def __init__(
        self,
        hook: EscalationTimerHook,
        ids: list[str],
        found: dict[str, list[store.TimerRow]],
        writes: BatchTimerWrites,
        now: datetime,
    ) -> None:
        self.hook, self.ids, self.found, self.writes, self.now = hook, ids, found, writes, now
        self.fired: list[tuple[str, MetricState, bool]] = []
        self.soonest: datetime | None = None

    def changed(self, session: Session) -> set[str]:
        """The tickets whose timer rows differ now (read again, locked) from those planned
        over: a firing, or a write of the ticket, came between."""
        now_rows = store.timer_marks_of_tickets(session, self.ids)
        return {
            ticket_id
            for ticket_id in self.ids
            if now_rows.get(ticket_id, []) != [row.mark() for row in self.found[ticket_id]]
        }

    def write(self, session: Session, skip: set[str]) -> None:
        """Write the plan, but the rows of the tickets in `skip`; then follow up the fired
        timers and wake the firing step if a timer is due soon."""
        writes, found = self.writes, self.found
        added = [row for row in writes.added if row.ticket_id not in skip]
        kept, removed = [], []
        for ticket_id, rows in found.items():
            if ticket_id in skip:
                continue
            for row in rows:
                if row.id in writes.removed:
                    removed.append(row.id)
                else:
                    kept.append(row)
        store.write_timer_rows(session, added, kept, sorted(removed))
        for ticket_id, metric_state, running in self.fired:
            if ticket_id not in skip:
                follow_up_fired(
                    session,
                    ticket_id,
                    metric_state,
                    running,
                    self.now,
                    pagerduty=self.hook.pagerduty,
                )
        store.expire_timers(session, set(self.ids))
        self.hook._wake_after_commit(session, self.soonest, self.now)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
