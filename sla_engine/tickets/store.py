"""All SQL of tickets: the ticket row, its event log and its metric rows.

The service calls these functions with a session inside its transaction; nothing here
commits. Rows are read as plain values where no ORM identity is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sla_engine.core.clock import Event, TicketState
from sla_engine.storage.models import Ticket, TicketEvent, TicketMetric

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
METRICS_TABLE = cast(Table, TicketMetric.__table__)
EVENTS_TABLE = cast(Table, TicketEvent.__table__)
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
_TICKET_BY_ID = select(Ticket).where(Ticket.id == bindparam("ticket_id"))
_TICKET_LOCKED = _TICKET_BY_ID.with_for_update().execution_options(populate_existing=True)
_EVENTS_OF_TICKET = (
    select(*_EVENT_COLUMNS)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"))
    .order_by(TicketEvent.seq)
)
_INSERT_EVENT = EVENTS_TABLE.insert().returning(EVENTS_TABLE.c.seq)
_METRICS_OF_TICKET = select(
    METRICS_TABLE.c.metric, *(METRICS_TABLE.c[name] for name in METRIC_FIELDS)
).where(METRICS_TABLE.c.ticket_id == bindparam("ticket_id"))
_UPDATE_METRIC = update(METRICS_TABLE).where(
    METRICS_TABLE.c.ticket_id == bindparam("b_ticket_id"),
    METRICS_TABLE.c.metric == bindparam("b_metric"),
)


def find_ticket(session: Session, ticket_id: str, *, lock: bool = False) -> Ticket | None:
    """The ticket row (locked for the transaction with ``lock``), or None."""
    query = _TICKET_LOCKED if lock else _TICKET_BY_ID
    return session.scalar(query, {"ticket_id": ticket_id})


def event_rows(session: Session, ticket_id: str) -> list[StoredEvent]:
    """The ticket's log in arrival order, as plain values (one query, no ORM objects)."""
    rows = session.execute(_EVENTS_OF_TICKET, {"ticket_id": ticket_id})
    return [StoredEvent(*r) for r in rows]


def insert_event(
    session: Session,
    ticket_id: str,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    data: Mapping[str, Any],
    now: datetime,
) -> StoredEvent:
    """Append an event to the log; its `seq` is the arrival position."""
    seq = session.execute(
        _INSERT_EVENT,
        {
            "ticket_id": ticket_id,
            "event_id": event_id,
            "type": type_,
            "occurred_at": occurred_at,
            "data": dict(data),
            "received_at": now,
        },
    ).scalar_one()
    return StoredEvent(seq, event_id, type_, occurred_at, dict(data), now)


def store_metrics(session: Session, ticket_id: str, state: TicketState, now: datetime) -> None:
    """Write only what differs from the stored rows (`updated_at` marks the last change)."""
    table = METRICS_TABLE
    stored = {
        r.metric: r._mapping for r in session.execute(_METRICS_OF_TICKET, {"ticket_id": ticket_id})
    }
    wanted = metric_values(state)
    added = [
        {"ticket_id": ticket_id, "metric": name, **values, "updated_at": now}
        for name, values in wanted.items()
        if name not in stored
    ]
    changed = [
        {"b_ticket_id": ticket_id, "b_metric": name, **values, "updated_at": now}
        for name, values in wanted.items()
        if name in stored and any(stored[name][k] != v for k, v in values.items())
    ]
    gone = [name for name in stored if name not in wanted]
    if added:
        session.execute(insert(table), added)
    if changed:
        session.execute(_UPDATE_METRIC, changed)
    if gone:
        session.execute(
            delete(table).where(table.c.ticket_id == ticket_id, table.c.metric.in_(gone))
        )


def replay_sorted(rows: Sequence[LogRow]) -> list[LogRow]:
    """The log in replay order: by ``(occurred_at, seq)``."""
    return sorted(rows, key=lambda r: (r.occurred_at, r.seq))
