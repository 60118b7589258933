"""Escalation SQL outside the outbox: timer rows, disabled destinations, retention.

Every function works inside the caller's transaction. The planning and firing logic
(`timers.py`, `firing.py`) decides; this module only reads and writes rows. The deliveries
table (the outbox) has its own statements in `outbox.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.escalation.models import DestinationState, EscalationDelivery, EscalationTimer
from sla_engine.escalation.planning import PlannedTimer
from sla_engine.storage.upsert import insert_ignoring_duplicates

FINISHED_TIMER_STATUSES = ("fired", "skipped", "cancelled")
FINISHED_DELIVERY_STATUSES = ("sent", "dead", "cancelled")

# Every timer row of a ticket, locked, in id order (one query per ticket write).
_TIMERS_OF_TICKET = (
    sa.select(EscalationTimer)
    .where(EscalationTimer.ticket_id == sa.bindparam("ticket_id"))
    .order_by(EscalationTimer.id)
    .with_for_update()
)


@dataclass(frozen=True, slots=True)
class DueRow:
    """A pending timer whose time has come, as read (and locked) by the firing step."""

    id: int
    ticket_id: str
    metric: str
    cycle: int
    threshold: str
    due_at: datetime
    generation: int
    policy: str
    calendar: str
    breach_at: datetime
    targets: str


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    """A due timer to mark `fired` or `skipped`, fenced on the generation it was read at."""

    timer_id: int
    seen_generation: int
    status: str


# -- timers of one ticket (the ticket hook) ------------------------------------------------------


def timers_of_ticket(
    session: Session, ticket_id: str, metric: str | None = None
) -> list[EscalationTimer]:
    """The ticket's timer rows (of one metric, or all), locked, in id order."""
    statement = _TIMERS_OF_TICKET
    if metric is not None:
        statement = statement.where(EscalationTimer.metric == metric)
    return list(session.scalars(statement, {"ticket_id": ticket_id}))


def timers_of_tickets(session: Session, ticket_ids: list[str]) -> dict[str, list[EscalationTimer]]:
    """The timer rows of many tickets at once (locked, in id order), by ticket."""
    rows: dict[str, list[EscalationTimer]] = {ticket_id: [] for ticket_id in ticket_ids}
    statement = (
        sa.select(EscalationTimer)
        .where(EscalationTimer.ticket_id.in_(ticket_ids))
        .order_by(EscalationTimer.id)
        .with_for_update()
    )
    for row in session.scalars(statement):
        rows[row.ticket_id].append(row)
    return rows


def targets_json(planned: PlannedTimer) -> str:
    return json.dumps([t.to_json() for t in planned.targets])


def add_timer(
    session: Session,
    *,
    ticket_id: str,
    metric: str,
    cycle: int,
    policy: str,
    calendar: str,
    breach_at: datetime,
    planned: PlannedTimer,
    now: datetime,
    generation: int = 1,
) -> EscalationTimer:
    """A new pending timer row for `planned` (generation 1; 0 marks a row planned while
    loading history)."""
    row = EscalationTimer(
        ticket_id=ticket_id,
        metric=metric,
        cycle=cycle,
        threshold=planned.threshold,
        due_at=planned.due_at,
        status="pending",
        generation=generation,
        policy=policy,
        calendar=calendar,
        breach_at=breach_at,
        targets=targets_json(planned),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def timer_exists(session: Session, ticket_id: str, metric: str, cycle: int, threshold: str) -> bool:
    t = EscalationTimer
    found = session.scalar(
        sa.select(t.id).where(
            t.ticket_id == ticket_id, t.metric == metric, t.cycle == cycle, t.threshold == threshold
        )
    )
    return found is not None


def triggered_incidents(
    session: Session, ticket_id: str, metric: str
) -> list[tuple[int, str, datetime | None]]:
    """(cycle, destination, latest lease) of each PagerDuty trigger sent or being sent."""
    t = EscalationDelivery
    rows = session.execute(
        sa.select(t.cycle, t.destination, sa.func.max(t.lease_until))
        .where(
            t.ticket_id == ticket_id,
            t.metric == metric,
            t.kind == "trigger",
            t.status.in_(("sent", "sending")),
        )
        .group_by(t.cycle, t.destination)
    ).all()
    return [(int(cycle), str(destination), until) for cycle, destination, until in rows]


# -- firing ---------------------------------------------------------------------------------------


def due_timers(session: Session, now: datetime, limit: int) -> list[DueRow]:
    """Up to `limit` pending timers due by `now`, earliest first, locked (`SKIP LOCKED` on
    PostgreSQL, so concurrent firing processes take disjoint batches)."""
    t = EscalationTimer
    rows = session.execute(
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
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [DueRow(*row) for row in rows]


def mark_timers(session: Session, outcomes: Sequence[TimerOutcome], now: datetime) -> None:
    """Set each timer's status, only where it is still pending at the generation read (a
    ticket write that moved it since makes the firing inert)."""
    if not outcomes:
        return
    table = sa.Table(EscalationTimer.__tablename__, EscalationTimer.metadata)
    session.execute(
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("timer_id"),
            table.c.generation == sa.bindparam("seen_generation"),
            table.c.status == "pending",
        )
        .values(status=sa.bindparam("new_status"), fired_at=now, updated_at=now),
        [
            {"timer_id": o.timer_id, "seen_generation": o.seen_generation, "new_status": o.status}
            for o in outcomes
        ],
    )


# -- destinations -------------------------------------------------------------------------------


def disabled_destinations(session: Session) -> set[str]:
    return set(session.scalars(sa.select(DestinationState.name)))


def disable_destination(session: Session, name: str, *, now: datetime, reason: str) -> None:
    """Record a destination as disabled; a no-op when another worker already did."""
    insert_ignoring_duplicates(
        session, DestinationState, {"name": name, "disabled_at": now, "reason": reason}
    )


# -- retention -----------------------------------------------------------------------------------


def prune(session: Session, cutoff: datetime) -> int:
    """Delete finished deliveries and timers last changed before `cutoff`; returns how many."""
    d, t = EscalationDelivery, EscalationTimer
    gone = 0
    for statement in (
        sa.delete(d).where(d.status.in_(FINISHED_DELIVERY_STATUSES), d.updated_at < cutoff),
        sa.delete(t).where(t.status.in_(FINISHED_TIMER_STATUSES), t.updated_at < cutoff),
    ):
        result = cast("sa.CursorResult[Any]", session.execute(statement))
        gone += int(result.rowcount)
    return gone
