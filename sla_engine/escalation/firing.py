"""Firing due timers: one transaction turns each due timer into outbox rows.

Due timers are read `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers), each is
marked fired only if its `generation` is still the one read, and the highest overdue
threshold of each metric cycle fires while the lower ones are recorded as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.escalation import metrics, outbox
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.escalation.rules import (
    BusinessCalendar,
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

KIND_BY_TYPE = {"webhook": "webhook", "pagerduty": "trigger"}


def insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows in one statement; a row whose id exists is left as it is. A Core
    insert on the table: the rows are complete, so no ORM bookkeeping per row is needed."""
    table = cast(sa.Table, EscalationDelivery.__table__)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)


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
        destinations: Mapping[str, Any],
        policies: Mapping[str, Any],
        calendars: Callable[[str], BusinessCalendar],
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
        t = EscalationTimer
        rows = list(
            session.execute(
                sa.select(
                    t.id,
                    t.ticket_id,
                    t.metric,
                    t.cycle,
                    t.threshold,
                    t.due_at,
                    t.generation,
                    t.policy,
                    t.calendar,
                    t.breach_at,
                    t.targets,
                )
                .where(t.status == "pending", t.due_at <= now)
                .order_by(t.due_at)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
        )
        report = FireReport(full_batch=len(rows) >= self.batch)
        if not rows:
            return report
        by_id = {r.id: r for r in rows}
        self._memo = {}
        fire, skip = choose_firing(
            DueTimer(r.id, (r.ticket_id, r.metric, r.cycle), r.due_at) for r in rows
        )
        table = sa.Table(t.__tablename__, t.metadata)
        session.execute(
            sa.update(table)
            .where(
                table.c.id == sa.bindparam("timer_id"),
                table.c.generation == sa.bindparam("seen_generation"),
                table.c.status == "pending",
            )
            .values(status=sa.bindparam("new_status"), fired_at=now, updated_at=now),
            [
                {"timer_id": d.id, "seen_generation": by_id[d.id].generation, "new_status": status}
                for status, timers in (("skipped", skip), ("fired", fire))
                for d in timers
            ],
        )
        deliveries: list[dict[str, Any]] = []
        for timer in fire:
            row = by_id[timer.id]
            deliveries.extend(self._deliveries(row, now))
            self._materialise_next_repeat(session, row, now)
        if deliveries:
            insert_ignoring_duplicates(session, deliveries)
        report.fired, report.skipped, report.deliveries = len(fire), len(skip), len(deliveries)
        metrics.DUE.inc(report.fired)
        metrics.SKIPPED.inc(report.skipped)
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

    def event(self, row: Any, now: datetime) -> dict[str, Any]:
        """The SPEC's webhook body for a fired timer."""
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

    def _deliveries(self, row: Any, now: datetime) -> list[dict[str, Any]]:
        """One outbox row per destination of a fired timer."""
        payload = json.dumps(self.event(row, now), separators=(",", ":"))
        found = []
        for target in self.targets(row.targets):
            destination = self.destinations.get(target.to)
            kind = KIND_BY_TYPE.get(getattr(destination, "type", ""), "webhook")
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

    def _materialise_next_repeat(self, session: Session, row: Any, now: datetime) -> None:
        fired_number = repeat_number(row.threshold)
        if fired_number is None:
            return
        policy = self.policies.get(row.policy)
        metric_policy = policy.metrics.get(row.metric) if policy is not None else None
        repeat = getattr(metric_policy, "repeat_after_breach", None)
        if repeat is None:
            return
        number = next_repeat_after(row.breach_at, repeat.every, fired_number, now)
        planned = plan_repeat(row.breach_at, repeat, number)
        exists = session.scalar(
            sa.select(EscalationTimer.id).where(
                EscalationTimer.ticket_id == row.ticket_id,
                EscalationTimer.metric == row.metric,
                EscalationTimer.cycle == row.cycle,
                EscalationTimer.threshold == planned.threshold,
            )
        )
        if exists is not None:
            return
        session.add(
            EscalationTimer(
                ticket_id=row.ticket_id,
                metric=row.metric,
                cycle=row.cycle,
                threshold=planned.threshold,
                due_at=planned.due_at,
                status="pending",
                generation=1,
                policy=row.policy,
                calendar=row.calendar,
                breach_at=row.breach_at,
                targets=json.dumps([t.to_json() for t in planned.targets]),
                created_at=now,
                updated_at=now,
            )
        )
