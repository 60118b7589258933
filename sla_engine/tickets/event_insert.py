"""An event write's first round trip on PostgreSQL: lock the ticket and append the event in
one statement.

The ticket lock (`SELECT ... FOR UPDATE`) and the event insert were two statements, so two
round trips, each costing the server psycopg's per-statement CPU as well as the wait. Here a
data-modifying CTE inserts the event from the locked ticket row (so the lock is taken first)
and only when the event is not earlier than the ticket's `created_at`; the answer is the
ticket row and the new event's `seq`, null when nothing was inserted (a repeated event_id or
an event before `created_at`: the caller tells the two apart as before). SQLite has no
data-modifying CTEs: there the two statements stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.orm import Session

from sla_engine.storage.driver_statements import DriverStatement
from sla_engine.storage.write_connection import connection_of
from sla_engine.tickets.store import (
    EVENTS_TABLE,
    TICKETS_TABLE,
    LoadedTicket,
    StoredEvent,
    event_params,
    loaded_ticket,
)

_COLUMNS = [column.name for column in TICKETS_TABLE.c]
_LOCK_AND_INSERT = DriverStatement(
    text(
        f"WITH t AS (SELECT {', '.join(_COLUMNS)} FROM tickets WHERE id = :ticket_id "
        "FOR UPDATE), "
        "e AS (INSERT INTO ticket_events "
        "(ticket_id, event_id, type, occurred_at, data, received_at) "
        "SELECT t.id, :event_id, :type, :occurred_at, :data, :received_at FROM t "
        "WHERE t.created_at <= :occurred_at "
        "ON CONFLICT (ticket_id, event_id) DO NOTHING RETURNING seq) "
        f"SELECT {', '.join('t.' + name for name in _COLUMNS)}, (SELECT seq FROM e) FROM t"
    ).bindparams(
        bindparam("ticket_id", type_=TICKETS_TABLE.c.id.type),
        *(
            bindparam(name, type_=EVENTS_TABLE.c[name].type)
            for name in ("event_id", "type", "occurred_at", "data", "received_at")
        ),
    ),
    [*(column.type for column in TICKETS_TABLE.c), Integer()],
)


def combined(session: Session) -> bool:
    """Whether `lock_and_insert` can serve this session's database (PostgreSQL)."""
    return connection_of(session).dialect.name == "postgresql"


def lock_and_insert(
    session: Session,
    ticket_id: str,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    data: Mapping[str, Any],
    now: datetime,
) -> tuple[LoadedTicket, StoredEvent | None] | None:
    """Lock the ticket and append the event (PostgreSQL only): None for an unknown ticket,
    else the ticket and the stored event, or None in its place when nothing was inserted
    (event_id already stored, or `occurred_at` before the ticket's `created_at`)."""
    values = dict(data)
    row = _LOCK_AND_INSERT.first(
        connection_of(session), event_params(ticket_id, event_id, type_, occurred_at, values, now)
    )
    if row is None:
        return None
    loaded = loaded_ticket(dict(zip(_COLUMNS, row[:-1], strict=True)))
    seq = row[-1]
    if seq is None:
        return loaded, None
    return loaded, StoredEvent(seq, event_id, type_, occurred_at, values, now)
