"""Firing due timers: one transaction turns each due timer into outbox rows.

Due timers are read `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers), each is
marked fired only if its `generation` is still the one read, and the highest overdue
threshold of each metric cycle fires while the lower ones are recorded as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sla_engine.config import Destination
from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.policies import Policy
from sla_engine.escalation import outbox, prometheus, store
from sla_engine.escalation.planning import (
    DueTimer,
    Target,
    business_remaining_s,
    choose_firing,
    hold_until,
    metric_status_at,
    next_repeat_after,
    plan_repeat,
    repeat_number,
    targets_from_json,
)
from sla_engine.escalation.store import DueRow, TimerOutcome
from sla_engine.json_types import JsonObject

KIND_BY_TYPE = {"webhook": "webhook", "pagerduty": "trigger"}


@dataclass
class FireReport:
    fired: int = 0
    skipped: int = 0
    deliveries: int = 0
    full_batch: bool = False


class TimerFiring:
    """Fires due timers into the outbox."""

    def __init__(
        self,
        destinations: Mapping[str, Destination],
        policies: Mapping[str, Policy],
        calendars: CalendarLookup,
        *,
        batch: int = 500,
    ) -> None:
        self.destinations = destinations
        self.policies = policies
        self.calendars = calendars
        self._memo: dict[str, BusinessCalendar] = {}
        self._targets: dict[str, tuple[Target, ...]] = {}
        self.batch = batch

    def fire_due(self, session: Session, now: datetime) -> FireReport:
        """Fire one batch of due timers: mark them, queue their deliveries, plan repeats."""
        rows = store.due_timers(session, now, self.batch)
        report = FireReport(full_batch=len(rows) >= self.batch)
        if not rows:
            return report
        by_id = {r.id: r for r in rows}
        self._memo = {}
        fire, skip = choose_firing(
            DueTimer(r.id, (r.ticket_id, r.metric, r.cycle), r.due_at) for r in rows
        )
        store.mark_timers(
            session,
            [
                TimerOutcome(d.id, by_id[d.id].generation, status)
                for status, timers in (("skipped", skip), ("fired", fire))
                for d in timers
            ],
            now,
        )
        deliveries: list[JsonObject] = []
        for timer in fire:
            row = by_id[timer.id]
            deliveries.extend(self.deliveries(row, now))
            self._materialise_next_repeat(session, row, now)
        outbox.enqueue_many(session, deliveries)
        report.fired, report.skipped, report.deliveries = len(fire), len(skip), len(deliveries)
        prometheus.DUE.inc(report.fired)
        prometheus.SKIPPED.inc(report.skipped)
        return report

    def calendar(self, name: str) -> BusinessCalendar:
        """Calendars looked up once per firing batch (the loader checks files each call)."""
        if name not in self._memo:
            self._memo[name] = self.calendars(name)
        return self._memo[name]

    def targets(self, text: str) -> tuple[Target, ...]:
        """A timer's targets, parsed once per distinct JSON text (most timers share one)."""
        found = self._targets.get(text)
        if found is None:
            if len(self._targets) > 1024:
                self._targets.clear()
            found = self._targets[text] = targets_from_json(json.loads(text))
        return found

    def event(self, row: DueRow, now: datetime) -> JsonObject:
        """The webhook body (docs/ESCALATIONS.md) for a fired timer."""
        calendar = self.calendar(row.calendar)
        return {
            "type": "sla.escalation",
            "ticket_id": row.ticket_id,
            "metric": row.metric,
            "threshold": row.threshold,
            "status": metric_status_at(now, row.breach_at),
            "breach_at": row.breach_at.isoformat(),
            "business_remaining_s": business_remaining_s(now, row.breach_at, calendar),
            "policy": row.policy,
            "occurred_at": row.due_at.isoformat(),
        }

    def deliveries(self, row: DueRow, now: datetime) -> list[JsonObject]:
        """One outbox row per destination of a fired timer."""
        payload = json.dumps(self.event(row, now), separators=(",", ":"))
        found = []
        for target in self.targets(row.targets):
            destination = self.destinations.get(target.to)
            kind = KIND_BY_TYPE.get(destination.type if destination is not None else "", "webhook")
            during = self.calendar(target.during) if target.during else None
            found.append(
                {
                    "id": outbox.delivery_id(
                        row.ticket_id, row.metric, row.cycle, row.threshold, target.to, kind
                    ),
                    "timer_id": row.id,
                    "ticket_id": row.ticket_id,
                    "metric": row.metric,
                    "cycle": row.cycle,
                    "threshold": row.threshold,
                    "destination": target.to,
                    "kind": kind,
                    "payload": payload,
                    "status": "queued",
                    "attempts": 0,
                    "due_at": row.due_at,
                    "not_before": hold_until(now, during),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return found

    def _materialise_next_repeat(self, session: Session, row: DueRow, now: datetime) -> None:
        """After a repeat fired, the next one becomes a timer row (only one exists at a time)."""
        fired_number = repeat_number(row.threshold)
        if fired_number is None:
            return
        policy = self.policies.get(row.policy)
        metric_policy = policy.metrics.get(row.metric) if policy is not None else None
        repeat = metric_policy.repeat_after_breach if metric_policy is not None else None
        if repeat is None:
            return
        number = next_repeat_after(row.breach_at, repeat.every, fired_number, now)
        planned = plan_repeat(row.breach_at, repeat, number)
        if store.timer_exists(session, row.ticket_id, row.metric, row.cycle, planned.threshold):
            return
        store.add_timer(
            session,
            ticket_id=row.ticket_id,
            metric=row.metric,
            cycle=row.cycle,
            policy=row.policy,
            calendar=row.calendar,
            breach_at=row.breach_at,
            planned=planned,
            now=now,
        )
