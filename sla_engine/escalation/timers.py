"""The ticket hook that keeps escalation timer rows in step with each ticket write.

Runs inside the ticket's transaction (after its metric rows are written), so a timer is
created, moved or cancelled atomically with the change that caused it. Every move or
cancel bumps the row's `generation`, which makes a firing that read the old row inert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.escalation import outbox
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.escalation.rules import (
    BusinessCalendar,
    PlannedTimer,
    is_paused,
    is_running,
    plan_repeat,
    plan_thresholds,
    repeat_number,
)
from sla_engine.tickets import RecentCalendars

Calendars = Callable[[str], BusinessCalendar]

# Every timer row of a ticket, locked, in id order (one query per ticket write).
_TIMERS_OF_TICKET = (
    sa.select(EscalationTimer)
    .where(EscalationTimer.ticket_id == sa.bindparam("ticket_id"))
    .order_by(EscalationTimer.id)
    .with_for_update()
)


def default_calendars(name: str) -> BusinessCalendar:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)  # type: ignore[no-any-return]


def _targets_json(planned: PlannedTimer) -> str:
    return json.dumps([t.to_json() for t in planned.targets])


class EscalationTimerHook:
    """`TicketHook` that plans, moves and cancels a ticket's escalation timers."""

    def __init__(
        self,
        policies: Mapping[str, Any],
        destinations: Mapping[str, Any],
        *,
        calendars: Calendars = default_calendars,
        wake: Callable[[], None] | None = None,
        wake_within: timedelta = timedelta(seconds=5),
    ) -> None:
        self.policies = policies
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
        self.pagerduty = any(getattr(d, "type", "") == "pagerduty" for d in destinations.values())

    def on_create(self, session: Session, ticket: Any, request: Any, now: datetime) -> None:
        """Nothing to do before the first state is computed."""

    def on_event(self, session: Session, ticket: Any, event: Any, now: datetime) -> None:
        """Timers follow the state (`on_state`), not single events."""

    def on_state(self, session: Session, ticket: Any, state: Any, now: datetime) -> None:
        if not self.enabled:
            return
        policy = self.policies.get(state.policy)
        rows_by_metric: dict[str, list[EscalationTimer]] = {}
        for row in session.scalars(_TIMERS_OF_TICKET, {"ticket_id": state.ticket_id}):
            rows_by_metric.setdefault(row.metric, []).append(row)
        soonest: datetime | None = None
        for name, metric_state in state.metrics.items():
            metric_policy = policy.metrics.get(name) if policy is not None else None
            due = self.sync_metric(
                session,
                state.ticket_id,
                state.policy,
                metric_state,
                metric_policy,
                now,
                rows=rows_by_metric.get(name, []),
            )
            if due is not None and (soonest is None or due < soonest):
                soonest = due
        if self.wake is not None and soonest is not None and soonest <= now + self.wake_within:
            wake = self.wake
            sa.event.listen(session, "after_commit", lambda _s: wake(), once=True)

    def sync_metric(
        self,
        session: Session,
        ticket_id: str,
        policy: str,
        metric_state: Any,
        metric_policy: Any,
        now: datetime,
        rows: list[EscalationTimer] | None = None,
    ) -> datetime | None:
        """Bring one metric's timer rows to the plan; returns the earliest pending due time.

        `rows` are the metric's timer rows already read (and locked) by the caller; without
        them they are read here. Rows are written only where they differ from the plan."""
        if rows is None:
            rows = list(
                session.scalars(
                    _TIMERS_OF_TICKET.where(EscalationTimer.metric == metric_state.metric),
                    {"ticket_id": ticket_id},
                )
            )
        running = is_running(metric_state)
        planned: list[PlannedTimer] = []
        if (
            running
            and metric_policy is not None
            and (metric_policy.escalate or metric_policy.repeat_after_breach is not None)
        ):
            calendar = self.calendars(metric_state.calendar)
            planned = plan_thresholds(metric_state, metric_policy, calendar)
            repeat = self._planned_repeat(rows, metric_state, metric_policy)
            if repeat is not None:
                planned.append(repeat)
        by_key = {(r.cycle, r.threshold): r for r in rows}
        wanted = {(metric_state.cycle, p.threshold) for p in planned}
        soonest: datetime | None = None
        for item in planned:
            row = by_key.get((metric_state.cycle, item.threshold))
            if row is None:
                session.add(self._new_row(ticket_id, policy, metric_state, item, now))
            elif row.status in ("pending", "cancelled"):
                self._move(row, policy, metric_state, item, now)
            else:
                continue
            soonest = item.due_at if soonest is None else min(soonest, item.due_at)
        for row in rows:
            if row.status == "pending" and (row.cycle, row.threshold) not in wanted:
                row.status = "cancelled"
                row.generation += 1
                row.updated_at = now
        # Deliveries exist only for fired timers (the firing step queues them; a replay or a
        # PagerDuty resolve follows a fired one): with none fired there is nothing to cancel
        # or resolve, and the two queries below are skipped.
        fired = any(row.status == "fired" for row in rows)
        if fired and not running and not is_paused(metric_state):
            outbox.cancel_queued(
                session,
                ticket_id=ticket_id,
                metric=metric_state.metric,
                cycle=None,
                now=now,
                reason=f"metric {metric_state.status}",
            )
        if fired and self.pagerduty:
            self._resolve_stopped_incidents(session, ticket_id, metric_state, running, now)
        return soonest

    @staticmethod
    def _planned_repeat(
        rows: list[EscalationTimer], metric_state: Any, metric_policy: Any
    ) -> PlannedTimer | None:
        """Only the next repeat exists as a row: after the last one fired, or the one the
        firing step already materialised."""
        repeat = metric_policy.repeat_after_breach
        if repeat is None:
            return None
        done = [0]
        waiting: list[int] = []
        for row in rows:
            number = repeat_number(row.threshold)
            if row.cycle != metric_state.cycle or number is None:
                continue
            (done if row.status in ("fired", "skipped") else waiting).append(number)
        number = max([max(done) + 1, *(n for n in waiting if n > max(done))])
        return plan_repeat(metric_state.breach_at, repeat, number)

    @staticmethod
    def _new_row(
        ticket_id: str, policy: str, metric_state: Any, item: PlannedTimer, now: datetime
    ) -> EscalationTimer:
        return EscalationTimer(
            ticket_id=ticket_id,
            metric=metric_state.metric,
            cycle=metric_state.cycle,
            threshold=item.threshold,
            due_at=item.due_at,
            status="pending",
            generation=1,
            policy=policy,
            calendar=metric_state.calendar,
            breach_at=metric_state.breach_at,
            targets=_targets_json(item),
            created_at=now,
            updated_at=now,
        )

    @staticmethod
    def _move(
        row: EscalationTimer, policy: str, metric_state: Any, item: PlannedTimer, now: datetime
    ) -> None:
        targets = _targets_json(item)
        unchanged = (
            row.status == "pending"
            and row.due_at == item.due_at
            and row.breach_at == metric_state.breach_at
            and row.targets == targets
            and row.policy == policy
            and row.calendar == metric_state.calendar
        )
        if unchanged:
            return
        row.status = "pending"
        row.due_at = item.due_at
        row.breach_at = metric_state.breach_at
        row.targets = targets
        row.policy = policy
        row.calendar = metric_state.calendar
        row.generation += 1
        row.updated_at = now

    def _resolve_stopped_incidents(
        self, session: Session, ticket_id: str, metric_state: Any, running: bool, now: datetime
    ) -> None:
        """A PagerDuty `resolve` (same dedup_key) for every triggered cycle that is over."""
        t = EscalationDelivery
        triggered = session.execute(
            sa.select(t.cycle, t.destination, sa.func.max(t.lease_until))
            .where(
                t.ticket_id == ticket_id,
                t.metric == metric_state.metric,
                t.kind == "trigger",
                t.status.in_(("sent", "sending")),
            )
            .group_by(t.cycle, t.destination)
        ).all()
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
