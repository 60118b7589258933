"""All SQL of tickets: the ticket row, its event log and its metric rows.

The service calls these functions with a session inside its transaction; nothing here
commits. Rows are read as plain values where no ORM identity is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from sla_engine.core.clock import Event, TicketState
from sla_engine.core.metric_clock import optional_us
from sla_engine.storage.models import Ticket, TicketCheckpoint, TicketEvent, TicketMetric

METRIC_FIELDS = (  # the columns of a metric row the clock derives
    "cycle",
    "status",
    "policy",
    "calendar",
    "started_at",
    "target_at",
    "breach_at",
    "stopped_at",
    "business_elapsed_s",
)
TICKETS_TABLE = cast(Table, Ticket.__table__)
METRICS_TABLE = cast(Table, TicketMetric.__table__)
EVENTS_TABLE = cast(Table, TicketEvent.__table__)
CHECKPOINTS_TABLE = cast(Table, TicketCheckpoint.__table__)
Position = tuple[datetime, int]
"""A place in replay order: (occurred_at, seq) of an event."""
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A row of the event log, read as plain values (no ORM identity to track)."""

    seq: int
    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    received_at: datetime


LogRow = TicketEvent | StoredEvent


def clock_event(row: LogRow) -> Event:
    return Event(
        event_id=row.event_id,
        type=row.type,
        occurred_at=row.occurred_at,
        seq=row.seq,
        data=dict(row.data),
    )


def is_transient(exc: Exception) -> bool:
    """A conflict between concurrent transactions that a retry of the request resolves."""
    if isinstance(exc, IntegrityError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def metric_values(state: TicketState) -> dict[str, dict[str, Any]]:
    """The `ticket_metrics` columns (but `updated_at`) each metric of `state` stores."""
    return {
        name: {
            "cycle": metric.cycle,
            "status": metric.status,
            "policy": state.policy,
            "calendar": metric.calendar,
            "started_at": metric.started_at,
            "target_at": metric.target_at,
            "breach_at": metric.breach_at,
            "stopped_at": metric.stopped_at,
            "business_elapsed_s": float(metric.business_elapsed_s),
        }
        for name, metric in state.metrics.items()
    }


_EVENT_COLUMNS = (
    TicketEvent.seq,
    TicketEvent.event_id,
    TicketEvent.type,
    TicketEvent.occurred_at,
    TicketEvent.data,
    TicketEvent.received_at,
)
_TICKET_ROW = select(TICKETS_TABLE).where(TICKETS_TABLE.c.id == bindparam("ticket_id"))
_TICKET_ROW_LOCKED = _TICKET_ROW.with_for_update()
_INSERT_TICKET = insert(TICKETS_TABLE).returning(*TICKETS_TABLE.c)
# SET takes the columns of the parameters given (one cached form per set of columns).
_UPDATE_TICKET = update(TICKETS_TABLE).where(TICKETS_TABLE.c.id == bindparam("b_id"))
_EVENTS_OF_TICKET = (
    select(*_EVENT_COLUMNS)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"))
    .order_by(TicketEvent.seq)
)
_METRICS_OF_TICKET = select(
    METRICS_TABLE.c.metric, *(METRICS_TABLE.c[name] for name in METRIC_FIELDS)
).where(METRICS_TABLE.c.ticket_id == bindparam("ticket_id"))
_UPDATE_METRIC = update(METRICS_TABLE).where(
    METRICS_TABLE.c.ticket_id == bindparam("b_ticket_id"),
    METRICS_TABLE.c.metric == bindparam("b_metric"),
)


@dataclass
class LoadedTicket:
    """A ticket row read with Core and the detached `Ticket` object hooks see and may change
    (queue keys, the legacy flag); :func:`save_ticket` writes back what changed."""

    ticket: Ticket
    stored: dict[str, Any]


def find_ticket(session: Session, ticket_id: str, *, lock: bool = False) -> LoadedTicket | None:
    """The ticket row (locked for the transaction with ``lock``), or None. One plain query:
    no ORM identity, no flush."""
    query = _TICKET_ROW_LOCKED if lock else _TICKET_ROW
    row = session.connection().execute(query, {"ticket_id": ticket_id}).mappings().first()
    return None if row is None else _loaded(row)


def insert_ticket(session: Session, values: Mapping[str, Any]) -> LoadedTicket:
    """Insert a ticket row (column defaults fill the rest)."""
    row = session.connection().execute(_INSERT_TICKET, dict(values)).mappings().one()
    return _loaded(row)


def save_ticket(session: Session, loaded: LoadedTicket) -> None:
    """Write the columns the service or a hook changed on ``loaded.ticket`` (one UPDATE)."""
    ticket, stored = loaded.ticket, loaded.stored
    changed = {
        name: value for name, old in stored.items() if (value := getattr(ticket, name)) != old
    }
    if not changed:
        return
    session.connection().execute(_UPDATE_TICKET, {"b_id": ticket.id, **changed})
    stored.update(changed)
    cached = session.identity_map.get(identity_key(Ticket, ticket.id))
    if cached is not None:  # an ORM copy loaded by the caller: read it again when used
        session.expire(cached)


def _loaded(row: Mapping[Any, Any]) -> LoadedTicket:
    stored = dict(row)
    return LoadedTicket(Ticket(**stored), stored)


def event_rows(session: Session, ticket_id: str) -> list[StoredEvent]:
    """The ticket's log in arrival order, as plain values (one query, no ORM objects)."""
    rows = session.execute(_EVENTS_OF_TICKET, {"ticket_id": ticket_id})
    return [StoredEvent(*r) for r in rows]


# One statement on both databases (SQLAlchemy's dialect `insert().on_conflict_do_nothing()`
# is not cached: it was compiled anew on every event).
_INSERT_NEW_EVENT = text(
    "INSERT INTO ticket_events (ticket_id, event_id, type, occurred_at, data, received_at) "
    "VALUES (:ticket_id, :event_id, :type, :occurred_at, :data, :received_at) "
    "ON CONFLICT (ticket_id, event_id) DO NOTHING RETURNING seq"
).bindparams(
    *(
        bindparam(name, type_=EVENTS_TABLE.c[name].type)
        for name in ("ticket_id", "event_id", "type", "occurred_at", "data", "received_at")
    )
)
_EVENT_BY_ID = select(*_EVENT_COLUMNS).where(
    TicketEvent.ticket_id == bindparam("ticket_id"), TicketEvent.event_id == bindparam("event_id")
)


def insert_new_event(
    session: Session,
    ticket_id: str,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    data: Mapping[str, Any],
    now: datetime,
) -> StoredEvent | None:
    """Append an event unless its event_id is stored for the ticket (then None): one
    statement either way."""
    values = dict(data)
    seq = (
        session.connection()
        .execute(
            _INSERT_NEW_EVENT,
            {
                "ticket_id": ticket_id,
                "event_id": event_id,
                "type": type_,
                "occurred_at": occurred_at,
                "data": values,
                "received_at": now,
            },
        )
        .scalar()
    )
    return None if seq is None else StoredEvent(seq, event_id, type_, occurred_at, values, now)


def find_event(session: Session, ticket_id: str, event_id: str) -> StoredEvent | None:
    row = (
        session.connection()
        .execute(_EVENT_BY_ID, {"ticket_id": ticket_id, "event_id": event_id})
        .first()
    )
    return None if row is None else StoredEvent(*row)


def events_after(
    session: Session, ticket_id: str, after: Position | None, until: datetime | None = None
) -> list[StoredEvent]:
    """The ticket's events after ``after`` in replay order (all without it), those that
    occurred by ``until`` when given. Served by the (ticket_id, occurred_at, seq) index."""
    query = select(*_EVENT_COLUMNS).where(TicketEvent.ticket_id == ticket_id)
    if after is not None:
        occurred, seq = after
        query = query.where(
            or_(
                TicketEvent.occurred_at > occurred,
                and_(TicketEvent.occurred_at == occurred, TicketEvent.seq > seq),
            )
        )
    if until is not None:
        query = query.where(TicketEvent.occurred_at <= until)
    query = query.order_by(TicketEvent.occurred_at, TicketEvent.seq)
    return [StoredEvent(*r) for r in session.execute(query)]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: Position
    state: Mapping[str, Any]


def checkpoint_before(session: Session, ticket_id: str, until: datetime) -> Checkpoint | None:
    """The ticket's last checkpoint whose events all occurred by ``until``."""
    table = CHECKPOINTS_TABLE.c
    row = session.execute(
        select(table.occurred_at, table.seq, table.state)
        .where(table.ticket_id == ticket_id, table.occurred_at <= until)
        .order_by(table.occurred_at.desc(), table.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else Checkpoint((row.occurred_at, row.seq), row.state)


def drop_checkpoints(session: Session, ticket_id: str, after: Position | None) -> None:
    """Forget the ticket's checkpoints after ``after`` in replay order (all without it)."""
    table = CHECKPOINTS_TABLE.c
    query = delete(CHECKPOINTS_TABLE).where(table.ticket_id == ticket_id)
    if after is not None:
        occurred, seq = after
        query = query.where(
            or_(
                table.occurred_at > occurred,
                and_(table.occurred_at == occurred, table.seq > seq),
            )
        )
    session.execute(query)


def add_checkpoints(session: Session, ticket_id: str, checkpoints: Sequence[Checkpoint]) -> None:
    if checkpoints:
        session.execute(
            insert(CHECKPOINTS_TABLE),
            [
                {
                    "ticket_id": ticket_id,
                    "occurred_at": c.position[0],
                    "seq": c.position[1],
                    "state": dict(c.state),
                }
                for c in checkpoints
            ],
        )


def encoded_metric_rows(values: Mapping[str, Mapping[Any, Any]]) -> dict[str, list[Any]]:
    """Metric rows as JSON lists (instants as UTC microseconds), to compare and to save."""
    return {
        name: [
            row["cycle"],
            row["status"],
            row["policy"],
            row["calendar"],
            optional_us(row["started_at"]),
            optional_us(row["target_at"]),
            optional_us(row["breach_at"]),
            optional_us(row["stopped_at"]),
            float(row["business_elapsed_s"]),
        ]
        for name, row in values.items()
    }


def store_metrics(
    session: Session,
    ticket_id: str,
    state: TicketState,
    now: datetime,
    stored: Mapping[str, list[Any]] | None = None,
) -> dict[str, list[Any]]:
    """Write only what differs from the stored rows (`updated_at` marks the last change).

    ``stored``: the rows as this service last wrote them (saved with the clock), so they
    need not be read; without it they are read. Returns the rows as now stored."""
    table = METRICS_TABLE
    if stored is None:
        stored = encoded_metric_rows(
            {
                r.metric: r._mapping
                for r in session.execute(_METRICS_OF_TICKET, {"ticket_id": ticket_id})
            }
        )
    values = metric_values(state)
    wanted = encoded_metric_rows(values)
    added = [
        {"ticket_id": ticket_id, "metric": name, **values[name], "updated_at": now}
        for name in wanted
        if name not in stored
    ]
    changed = [
        {"b_ticket_id": ticket_id, "b_metric": name, **values[name], "updated_at": now}
        for name, row in wanted.items()
        if name in stored and stored[name] != row
    ]
    gone = [name for name in stored if name not in wanted]
    if added:
        session.connection().execute(insert(table), added)
    if changed:
        session.connection().execute(_UPDATE_METRIC, changed)
    if gone:
        session.execute(
            delete(table).where(table.c.ticket_id == ticket_id, table.c.metric.in_(gone))
        )
    return wanted


def replay_sorted(rows: Sequence[LogRow]) -> list[LogRow]:
    """The log in replay order: by ``(occurred_at, seq)``."""
    return sorted(rows, key=lambda r: (r.occurred_at, r.seq))
