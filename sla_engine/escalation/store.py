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
from functools import lru_cache
from typing import Any, NotRequired, TypedDict, Unpack, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.escalation.models import DestinationState, EscalationDelivery, EscalationTimer
from sla_engine.escalation.planning import PlannedTimer, Target
from sla_engine.storage.bulk_update import one_of, update_rows
from sla_engine.storage.driver_statements import read_rows
from sla_engine.storage.upsert import insert_ignoring_duplicates

FINISHED_TIMER_STATUSES = ("fired", "skipped", "cancelled")
FINISHED_DELIVERY_STATUSES = ("sent", "dead", "cancelled")

TIMERS = cast(sa.Table, EscalationTimer.__table__)
# what planning may change on a row (the rest is its key and its creation); `updated_at`
# changes with any of them, so a batch neither reads nor compares it
_PLANNED_COLUMNS = (
    "due_at",
    "status",
    "generation",
    "policy",
    "calendar",
    "breach_at",
    "targets",
    "fired_at",
)
_READ_COLUMNS = ("id", "ticket_id", "metric", "cycle", "threshold", *_PLANNED_COLUMNS)
_INSERT_COLUMNS = (*_READ_COLUMNS[1:], "created_at", "updated_at")
_FIRST_PLANNED = len(_READ_COLUMNS) - len(_PLANNED_COLUMNS)
_STATUS = _PLANNED_COLUMNS.index("status")
_GENERATION = _PLANNED_COLUMNS.index("generation")


@lru_cache(maxsize=8)
def _timers_of_tickets(dialect: sa.Dialect) -> sa.Select[Any]:
    return (
        sa.select(*(TIMERS.c[name] for name in _READ_COLUMNS))
        .where(one_of(TIMERS.c.ticket_id, "ticket_ids", dialect))
        .order_by(TIMERS.c.id)
        .with_for_update()
    )


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


class TimerRow:
    """A timer row as plain values: what the batch path (`EscalationTimerHook.on_states`)
    reads, changes and writes back with a few statements instead of ORM objects. ``id`` is
    None for a row not yet inserted; `changed_columns()` compares with the values as read."""

    id: int | None = None
    ticket_id: str
    metric: str
    cycle: int
    threshold: str
    due_at: datetime
    status: str
    generation: int
    policy: str
    calendar: str
    breach_at: datetime
    targets: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fired_at: datetime | None = None
    _read: tuple[object, ...] | None = None

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def mark(self) -> tuple[object, ...]:
        """(id, status, generation) as read (see `timer_marks_of_tickets`)."""
        read = self._read or ()
        return (self.id, read[_STATUS], read[_GENERATION])

    def changed_columns(self) -> tuple[str, ...]:
        """The planned columns whose value differs from the row as read (none for a new row)."""
        read = self._read or ()
        return tuple(
            name
            for name, old in zip(_PLANNED_COLUMNS, read, strict=False)
            if getattr(self, name) != old
        )


def timer_rows_of_tickets(
    reader: Session | sa.Connection, ticket_ids: Sequence[str]
) -> dict[str, list[TimerRow]]:
    """The timer rows of many tickets at once, locked, in id order, by ticket (plain rows,
    without `created_at` and `updated_at`)."""
    rows: dict[str, list[TimerRow]] = {ticket_id: [] for ticket_id in ticket_ids}
    if not rows:
        return rows
    conn = reader.connection() if isinstance(reader, Session) else reader
    found = read_rows(conn, _timers_of_tickets(conn.dialect), {"ticket_ids": list(rows)})
    new = object.__new__
    for values in found:
        # the row's values set at once (the keyword call and its copies cost more)
        row = new(TimerRow)
        row.__dict__ = dict(zip(_READ_COLUMNS, values, strict=True))
        row._read = tuple(values[_FIRST_PLANNED:])
        rows[values[1]].append(row)
    return rows


@lru_cache(maxsize=8)
def _timer_marks(dialect: sa.Dialect) -> sa.Select[Any]:
    return (
        sa.select(TIMERS.c.id, TIMERS.c.ticket_id, TIMERS.c.status, TIMERS.c.generation)
        .where(one_of(TIMERS.c.ticket_id, "ticket_ids", dialect))
        .order_by(TIMERS.c.id)
        .with_for_update()
    )


def timer_marks_of_tickets(
    session: Session, ticket_ids: Sequence[str]
) -> dict[str, list[tuple[object, ...]]]:
    """Each timer row's (id, status, generation), locked, in id order, by ticket, as
    `TimerRow.mark` gives it: to tell whether a batch's rows moved since they were read.
    Outside a write of the ticket itself (whose ticket row the batch compares), a timer row
    changes only by firing (its status; a repeat materialised is a new id) or by retention
    (gone), so these columns tell."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    if not ticket_ids:
        return rows
    conn = session.connection()
    found = conn.execute(_timer_marks(conn.dialect), {"ticket_ids": list(ticket_ids)})
    for timer_id, ticket_id, status, generation in found.all():
        rows.setdefault(ticket_id, []).append((timer_id, status, generation))
    return rows


def flush_timers(session: Session) -> None:
    """Flush the ORM's pending timer changes (so that a plain read sees them)."""
    pending = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, EscalationTimer) for item in pending):
        session.flush()


def expire_timers(session: Session, ticket_ids: set[str]) -> None:
    """Expire the ORM copies of these tickets' timer rows (after plain writes to them)."""
    if not session.identity_map:
        return
    for item in list(session.identity_map.values()):
        # an expired copy has no ticket_id loaded (and needs nothing more)
        if isinstance(item, EscalationTimer) and item.__dict__.get("ticket_id") in ticket_ids:
            session.expire(item)


def write_timer_rows(
    session: Session, added: Sequence[TimerRow], kept: Sequence[TimerRow], removed: Sequence[int]
) -> None:
    """Insert `added`, write back the columns of `kept` that changed (by id; a row unchanged
    is skipped) and delete the rows `removed`: one statement each (executemany), the update
    one per set of changed columns (a re-plan moves `due_at`, `breach_at`, `generation`)."""
    conn = session.connection()
    if removed:
        conn.execute(sa.delete(TIMERS).where(TIMERS.c.id.in_(list(removed))))
    groups: dict[tuple[str, ...], list[list[object]]] = {}
    for row in kept:
        changed = row.changed_columns()
        if changed:
            values = [row.id, row.updated_at, *(getattr(row, name) for name in changed)]
            groups.setdefault(changed, []).append(values)
    for changed, rows in groups.items():
        update_rows(conn, TIMERS, ("id", "updated_at", *changed), rows)
    if added:
        conn.execute(
            sa.insert(TIMERS),
            [{name: getattr(row, name) for name in _INSERT_COLUMNS} for row in added],
        )


@lru_cache(maxsize=1024)
def _targets_json(targets: tuple[Target, ...]) -> str:
    return json.dumps([t.to_json() for t in targets])


def targets_json(planned: PlannedTimer) -> str:
    return _targets_json(planned.targets)


class NewTimer(TypedDict):
    """A new pending timer row for `planned`: generation 1, or 0 for a row planned while
    loading history."""

    ticket_id: str
    metric: str
    cycle: int
    policy: str
    calendar: str
    breach_at: datetime
    planned: PlannedTimer
    now: datetime
    generation: NotRequired[int]


def timer_values(**new: Unpack[NewTimer]) -> dict[str, object]:
    """The columns of the row `new` describes."""
    planned, now = new["planned"], new["now"]
    return {
        "ticket_id": new["ticket_id"],
        "metric": new["metric"],
        "cycle": new["cycle"],
        "threshold": planned.threshold,
        "due_at": planned.due_at,
        "status": "pending",
        "generation": new.get("generation", 1),
        "policy": new["policy"],
        "calendar": new["calendar"],
        "breach_at": new["breach_at"],
        "targets": targets_json(planned),
        "created_at": now,
        "updated_at": now,
        "fired_at": None,
    }


def add_timer(session: Session, **new: Unpack[NewTimer]) -> EscalationTimer:
    """The row `new` describes, added to the session."""
    values = timer_values(**new)
    row = EscalationTimer(**values)
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
    """Delete finished deliveries and timers last changed before `cutoff`; returns how many.
    A finished timer stays while a delivery it fired is unfinished: a held delivery is found
    through its timer's targets when its `during` calendar changes."""
    d, t = EscalationDelivery, EscalationTimer
    waiting = sa.select(d.id).where(d.timer_id == t.id, d.status.not_in(FINISHED_DELIVERY_STATUSES))
    gone = 0
    for statement in (
        sa.delete(d).where(d.status.in_(FINISHED_DELIVERY_STATUSES), d.updated_at < cutoff),
        sa.delete(t).where(
            t.status.in_(FINISHED_TIMER_STATUSES), t.updated_at < cutoff, ~waiting.exists()
        ),
    ):
        result = cast("sa.CursorResult[Any]", session.execute(statement))
        gone += int(result.rowcount)
    return gone
