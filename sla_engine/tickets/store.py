"""The SQL of tickets and their event logs (metric rows: `metric_rows`; checkpoints:
`checkpoints`).

The service calls these functions with a session inside its transaction; nothing here
commits. Rows are read as plain values where no ORM identity is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.engine import Connection, Dialect, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, configure_mappers
from sqlalchemy.orm.util import identity_key

from sla_engine.core.clock import Event
from sla_engine.storage.bulk_update import JsonText, one_of, update_rows
from sla_engine.storage.driver_statements import DriverStatement, read_rows
from sla_engine.storage.models import Ticket, TicketEvent
from sla_engine.storage.write_connection import connection_of
from sla_engine.tickets.checkpoints import Checkpoint as Checkpoint  # re-exported
from sla_engine.tickets.checkpoints import Position
from sla_engine.tickets.checkpoints import add_checkpoints as add_checkpoints  # re-exported
from sla_engine.tickets.metric_rows import METRIC_FIELDS as METRIC_FIELDS  # re-exported
from sla_engine.tickets.metric_rows import encoded_metric_rows as encoded_metric_rows
from sla_engine.tickets.metric_rows import metric_values as metric_values  # re-exported
from sla_engine.tickets.metric_rows import store_metrics as store_metrics  # re-exported

TICKETS_TABLE = cast(Table, Ticket.__table__)
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


_EVENT_COLUMNS = (
    TicketEvent.seq,
    TicketEvent.event_id,
    TicketEvent.type,
    TicketEvent.occurred_at,
    TicketEvent.data,
    TicketEvent.received_at,
)
_TICKET_COLUMNS = [column.name for column in TICKETS_TABLE.c]
TICKET_COLUMNS = tuple(_TICKET_COLUMNS)
"""The columns of a row of `ticket_rows`, in order."""
_TICKET_TYPES = [column.type for column in TICKETS_TABLE.c]
# a batch reads the saved clock as its JSON text (decoding it cost half of reading the row)
_TICKET_READ = [
    cast_(column, Text) if column.name == "clock_state" else column for column in TICKETS_TABLE.c
]
_TICKET_ROW = select(TICKETS_TABLE).where(TICKETS_TABLE.c.id == bindparam("ticket_id"))
_FIND_TICKET = {
    False: DriverStatement(_TICKET_ROW, _TICKET_TYPES),
    True: DriverStatement(_TICKET_ROW.with_for_update(), _TICKET_TYPES),
}
_INSERT_TICKET = insert(TICKETS_TABLE).returning(*TICKETS_TABLE.c)
_UPDATE_TICKET: dict[tuple[str, ...], DriverStatement] = {}
"""The UPDATE of each set of changed columns (``b_id``: the ticket), made when first used."""
_EVENTS_OF_TICKET = (
    select(*_EVENT_COLUMNS)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"))
    .order_by(TicketEvent.seq)
)


@dataclass
class LoadedTicket:
    """A ticket row read with Core and the detached `Ticket` object hooks see and may change
    (queue keys, the legacy flag); :func:`save_ticket` writes back what changed."""

    ticket: Ticket
    stored: dict[str, object]
    clock_text: str | None = None
    """The new saved clock's JSON text where a re-plan compared it (`keep_same_clock`) and
    found it changed: written as it is, not encoded again."""


def find_ticket(session: Session, ticket_id: str, *, lock: bool = False) -> LoadedTicket | None:
    """The ticket row (locked for the transaction with ``lock``), or None. One plain query:
    no ORM identity, no flush."""
    row = _FIND_TICKET[lock].first(connection_of(session), {"ticket_id": ticket_id})
    return None if row is None else loaded_ticket(dict(zip(_TICKET_COLUMNS, row, strict=True)))


def insert_ticket(session: Session, values: Mapping[str, object]) -> LoadedTicket:
    """Insert a ticket row (column defaults fill the rest)."""
    row = session.connection().execute(_INSERT_TICKET, dict(values)).mappings().one()
    return loaded_ticket(row)


def find_tickets(session: Session, ticket_ids: Sequence[str]) -> list[LoadedTicket]:
    """Several tickets, locked, in id order (so two batches lock in the same order), to be
    re-planned: the saved clock is not decoded (a re-plan rebuilds it from the whole log).
    The ticket's `clock_state` is None and ``stored["clock_state"]`` the stored JSON text;
    `keep_same_clock` then spares the write of a clock that came out the same."""
    return loaded_tickets(ticket_rows(session.connection(), ticket_ids))


def ticket_rows(conn: Connection, ticket_ids: Sequence[str]) -> Sequence[tuple[Any, ...]]:
    """The rows of `find_tickets` as read (locked; the saved clock as its JSON text)."""
    # tuples (a RowMapping's dict() cost more), fetched at once (psycopg's fetchone is slow)
    return read_rows(conn, _tickets_query(conn.dialect), {"ids": list(ticket_ids)})


def loaded_tickets(rows: Sequence[tuple[Any, ...]]) -> list[LoadedTicket]:
    """`find_tickets`' tickets from their rows (`ticket_rows`)."""
    found = []
    for row in rows:
        loaded = loaded_ticket(dict(zip(_TICKET_COLUMNS, row, strict=True)))
        loaded.ticket.__dict__["clock_state"] = None
        found.append(loaded)
    return found


def clock_texts(conn: Connection, ticket_ids: Sequence[str]) -> dict[str, str | None]:
    """Each ticket's saved clock as its stored JSON text, the rows locked: what tells whether
    a ticket was written since it was read (every write of a ticket rewrites its clock)."""
    found = conn.execute(_clock_texts_query(conn.dialect), {"ids": list(ticket_ids)})
    return dict(found.tuples().all())


@lru_cache(maxsize=8)
def _clock_texts_query(dialect: Dialect) -> Select[Any]:
    table = TICKETS_TABLE.c
    return (
        select(table.id, cast_(table.clock_state, Text))
        .where(one_of(table.id, "ids", dialect))
        .order_by(table.id)
        .with_for_update()
    )


@lru_cache(maxsize=8)
def _tickets_query(dialect: Dialect) -> Select[Any]:
    return (
        select(*_TICKET_READ)
        .where(one_of(TICKETS_TABLE.c.id, "ids", dialect))
        .order_by(TICKETS_TABLE.c.id)
        .with_for_update()
    )


def keep_same_clock(loaded: LoadedTicket, dialect: str) -> None:
    """Once a re-plan has put the new saved clock on ``loaded.ticket`` (read by
    `find_tickets`): if its JSON text is the one stored, it counts as unchanged (not written).
    The text is compared as this service writes it on ``dialect`` (a batch's JSON on
    PostgreSQL is compact); a clock stored in another spelling is just written again."""
    new = loaded.ticket.clock_state
    text = (_COMPACT if dialect == "postgresql" else _SPACED).encode(new)
    if text == loaded.stored.get("clock_state"):
        loaded.stored["clock_state"] = new
    else:
        loaded.clock_text = text


# a JSON column's text as written: by the JSON type (SQLite), inside `update_rows`' compact
# JSON (PostgreSQL)
_SPACED = json.JSONEncoder()
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def save_ticket(session: Session, loaded: LoadedTicket) -> None:
    """Write the columns the service or a hook changed on ``loaded.ticket`` (one UPDATE)."""
    save_tickets(session, [loaded])


def save_tickets(session: Session, tickets: Sequence[LoadedTicket]) -> None:
    """`save_ticket` for several: one `update_rows` per set of changed columns."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for loaded in tickets:
        ticket, stored = loaded.ticket, loaded.stored
        changed = _changed(ticket, stored)
        if not changed:
            continue
        row = {"b_id": ticket.id, **changed}
        if loaded.clock_text is not None and "clock_state" in changed:
            row["clock_state"] = JsonText(loaded.clock_text)
        loaded.clock_text = None
        groups.setdefault(tuple(sorted(changed)), []).append(row)
        stored.update(changed)
        if len(session.identity_map) == 0:
            continue
        cached = session.identity_map.get(identity_key(Ticket, ticket.id))
        if cached is not None:  # an ORM copy loaded by the caller: read it again when used
            session.expire(cached)
    for columns, rows in groups.items():
        # several rows: on PostgreSQL one statement over them all, not one per row; a clock
        # given as its JSON text goes there too (`update_rows` writes it as it is)
        if len(rows) > 1 or isinstance(rows[0].get("clock_state"), JsonText):
            values = [[row["b_id"], *(row[name] for name in columns)] for row in rows]
            update_rows(connection_of(session), TICKETS_TABLE, ("id", *columns), values)
        else:
            _ticket_update(columns).run(connection_of(session), rows)


def _changed(ticket: Ticket, stored: Mapping[str, object]) -> dict[str, object]:
    """The columns whose value on ``ticket`` differs from ``stored``: read from the object's
    own values (not through the ORM's attribute descriptors), the same object not compared."""
    current = ticket.__dict__
    changed = {}
    for name, old in stored.items():
        value = current[name] if name in current else getattr(ticket, name)
        if value is not old and value != old:
            changed[name] = value
    return changed


def _ticket_update(columns: tuple[str, ...]) -> DriverStatement:
    found = _UPDATE_TICKET.get(columns)
    if found is None:
        table = TICKETS_TABLE.c
        statement = (
            update(TICKETS_TABLE)
            .where(table.id == bindparam("b_id", type_=table.id.type))
            .values({name: bindparam(name, type_=table[name].type) for name in columns})
        )
        found = _UPDATE_TICKET[columns] = DriverStatement(statement)
    return found


def loaded_ticket(row: Mapping[str, object] | RowMapping) -> LoadedTicket:
    """The row as a detached `Ticket` with these values loaded (as a query would leave them,
    not set one by one: the constructor's attribute events cost more than the query)."""
    stored = dict(row)
    mapper = Ticket.__mapper__
    if not mapper.configured:
        configure_mappers()
    ticket = mapper.class_manager.new_instance()
    ticket.__dict__.update(stored)
    return LoadedTicket(ticket, stored)


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
_INSERT_NEW_EVENT_RUN = DriverStatement(_INSERT_NEW_EVENT, [Integer()])
_EVENT_BY_ID = select(*_EVENT_COLUMNS).where(
    TicketEvent.ticket_id == bindparam("ticket_id"), TicketEvent.event_id == bindparam("event_id")
)


def event_rows_of(
    reader: Session | Connection, ticket_ids: Sequence[str]
) -> dict[str, list[StoredEvent]]:
    """The logs of several tickets in arrival order (one query)."""
    found: dict[str, list[StoredEvent]] = {ticket_id: [] for ticket_id in ticket_ids}
    conn = reader.connection() if isinstance(reader, Session) else reader
    for row in read_rows(conn, _events_query(conn.dialect), {"ids": list(found)}):
        found[row[0]].append(StoredEvent(*row[1:]))
    return found


@lru_cache(maxsize=8)
def _events_query(dialect: Dialect) -> Select[Any]:
    return (
        select(TicketEvent.ticket_id, *_EVENT_COLUMNS)
        .where(one_of(EVENTS_TABLE.c.ticket_id, "ids", dialect))
        .order_by(TicketEvent.seq)
    )


def event_params(
    ticket_id: str,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    values: dict[str, Any],
    now: datetime,
) -> dict[str, object]:
    """The bind values of a new event row (the event write's statements share them)."""
    return {
        "ticket_id": ticket_id,
        "event_id": event_id,
        "type": type_,
        "occurred_at": occurred_at,
        "data": values,
        "received_at": now,
    }


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
    row = _INSERT_NEW_EVENT_RUN.first(
        connection_of(session), event_params(ticket_id, event_id, type_, occurred_at, values, now)
    )
    return None if row is None else StoredEvent(row[0], event_id, type_, occurred_at, values, now)


def find_event(session: Session, ticket_id: str, event_id: str) -> StoredEvent | None:
    row = (
        connection_of(session)
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


def replay_sorted(rows: Sequence[LogRow]) -> list[LogRow]:
    """The log in replay order: by ``(occurred_at, seq)``."""
    return sorted(rows, key=lambda r: (r.occurred_at, r.seq))
