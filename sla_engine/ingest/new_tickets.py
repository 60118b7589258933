"""The tickets an import chunk creates: replayed once each, then inserted in bulk.

A new ticket collects its clock events in memory while the chunk is decided. When the chunk
writes what it planned, each is replayed once from its events (as `TicketService` stores it
after them: saved clock, derived fields, checkpoints), and its ticket row, events and metric
rows are inserted in a few statements for all; the state hooks (escalation timers, queue
keys) then run once per ticket on its final state (`new_ticket_hooks`), and whatever they
changed on the ticket row is written back (as the ORM flushes it for a single call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.core.clock import Event, replay_order
from sla_engine.ingest.bulk_rows import in_batches, insert_rows
from sla_engine.ingest.new_ticket_hooks import NewStates
from sla_engine.storage.models import Ticket, TicketEvent, TicketMetric
from sla_engine.tickets import (
    METRIC_FIELDS,
    EventCreate,
    StoredEvent,
    TicketCreate,
    TicketService,
    metric_values,
    store,
)

TICKETS_TABLE = cast(sa.Table, Ticket.__table__)
EVENTS_TABLE = cast(sa.Table, TicketEvent.__table__)
METRICS_TABLE = cast(sa.Table, TicketMetric.__table__)
TICKET_COLUMNS = tuple(c.key for c in TICKETS_TABLE.columns)
EVENT_COLUMNS = ("ticket_id", "event_id", "type", "occurred_at", "data", "received_at")
METRIC_COLUMNS = ("ticket_id", "metric", *METRIC_FIELDS, "updated_at")

Step = Callable[[Session, NewStates, datetime], None]


@dataclass
class NewTicket:
    """A ticket this chunk creates, with the clock events it has so far."""

    request: TicketCreate
    legacy: bool | None
    events: list[EventCreate] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)


class NewTicketRow:
    """A ticket row not inserted yet: its columns as attributes (the defaults of those not
    given), read and set like the ORM row by the clock and the hooks, then inserted in bulk
    (building ORM objects for a hundred thousand rows would cost more than inserting them)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(_COLUMN_DEFAULTS)
        self.__dict__.update(values)


def _column_defaults() -> dict[str, Any]:
    defaults = {}
    for column in TICKETS_TABLE.columns:
        scalar = column.default is not None and column.default.is_scalar
        defaults[column.key] = column.default.arg if scalar else None  # type: ignore[union-attr]
    return defaults


_COLUMN_DEFAULTS = _column_defaults()


def ticket_row(req: TicketCreate, legacy: bool | None, now: datetime) -> NewTicketRow:
    """The ticket row as the clock and the hooks see it, before it is inserted."""
    calendar = getattr(req, "calendar", None)
    return NewTicketRow(
        id=req.id,
        policy=req.policy,
        current_policy=req.policy,
        created_at=req.created_at.astimezone(UTC),  # as stored
        account=req.account,
        product=req.product,
        version=req.version,
        legacy=legacy,
        status="open",
        received_at=now,
        initial_calendar=calendar,
        calendar=calendar,
    )


def write_new_tickets(
    session: Session,
    tickets: TicketService,
    steps: Sequence[Step],
    new: dict[str, NewTicket],
    events: Sequence[tuple[str, EventCreate]],
    now: datetime,
) -> dict[str, NewTicketRow]:
    """Insert `new` (its `events`, in the order they were decided) with their metric rows and
    saved clocks, run the state `steps` once per ticket; the rows written, by id."""
    rows: dict[str, NewTicketRow] = {}
    ticket_rows = []
    metric_rows: list[tuple[Any, ...]] = []
    states = []
    checkpoints: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for ticket_id, planned in new.items():
        ticket = ticket_row(planned.request, planned.legacy, now)
        state, taken = new_ticket_state(tickets, ticket, planned.events, now)
        if taken:
            checkpoints[ticket_id] = taken
        row = _row_of(ticket)
        ticket_rows.append(row)
        states.append((ticket, state, row))
        metric_rows.extend(
            (ticket_id, name, *(values[f] for f in METRIC_FIELDS), now)
            for name, values in metric_values(state).items()
        )
        rows[ticket_id] = ticket
    insert_rows(session, TICKETS_TABLE, TICKET_COLUMNS, ticket_rows)
    insert_rows(
        session,
        EVENTS_TABLE,
        EVENT_COLUMNS,
        [(ticket_id, e.event_id, e.type, e.occurred_at, e.data, now) for ticket_id, e in events],
    )
    insert_rows(session, METRICS_TABLE, METRIC_COLUMNS, metric_rows)
    if checkpoints:
        _add_checkpoints(session, new, checkpoints)
    items = [(ticket, state) for ticket, state, _ in states]
    for step in steps:
        step(session, items, now)
    _write_back(session, [(ticket, before) for ticket, _, before in states])
    return rows


def _write_back(session: Session, written: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
    """Update the columns the hooks changed on rows already inserted, grouped by columns."""
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for ticket, before in written:
        after = _row_of(ticket)
        if after == before:
            continue
        names = tuple(
            name
            for name, old, value in zip(TICKET_COLUMNS, before, after, strict=True)
            if old != value
        )
        values = dict(zip(TICKET_COLUMNS, after, strict=True))
        changed.setdefault(names, []).append(
            {"b_id": ticket.id, **{f"b_{name}": values[name] for name in names}}
        )
    for names, rows in changed.items():
        session.execute(
            sa.update(TICKETS_TABLE)
            .where(TICKETS_TABLE.c.id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in names}),
            rows,
        )


def _add_checkpoints(
    session: Session, new: dict[str, NewTicket], taken: dict[str, list[tuple[int, dict[str, Any]]]]
) -> None:
    """Checkpoints of long new tickets, at the (occurred_at, seq) their events got."""
    seqs: dict[tuple[str, str], int] = {}
    for part in in_batches(sorted(taken)):
        query = sa.select(TicketEvent.ticket_id, TicketEvent.event_id, TicketEvent.seq).where(
            TicketEvent.ticket_id.in_(part)
        )
        for ticket_id, event_id, seq in session.execute(query):
            seqs[(ticket_id, event_id)] = seq
    for ticket_id, points in taken.items():
        events = new[ticket_id].events
        store.add_checkpoints(
            session,
            ticket_id,
            [
                store.Checkpoint(
                    (events[i - 1].occurred_at, seqs[(ticket_id, events[i - 1].event_id)]), state
                )
                for i, state in points
            ],
        )


def new_ticket_state(
    tickets: TicketService, ticket: Any, events: Sequence[EventCreate], now: datetime
) -> tuple[Any, list[tuple[int, dict[str, Any]]]]:
    """A new ticket's state now from its events, as `TicketService` stores it after them:
    the saved clock (`ticket.clock_state`), the derived fields, and the checkpoints it takes
    (the position of each in `events`, 1-based, with the clock saved there)."""
    clocks = tickets.clocks
    clock = clocks.begin(ticket)
    log = [
        Event(e.event_id, e.type, e.occurred_at, i, e.data) for i, e in enumerate(events, start=1)
    ]
    taken = []
    for event in replay_order(log):
        clock.apply(event)
        if clock.applied % clocks.every == 0:
            taken.append((event.seq, clocks.to_json(clock)))
    if clock.last is None or clock.last <= now:
        state = clock.replay.state(ticket.id, now)
    else:  # an event dated after now: the state now leaves it out
        rows = [StoredEvent(e.seq, e.event_id, e.type, e.occurred_at, e.data, now) for e in log]
        state = tickets.evaluate_log(ticket, rows, now)
    # as `TicketService._store` saves it: with the metric rows as written
    ticket.clock_state = clocks.to_json(clock, store.encoded_metric_rows(metric_values(state)))
    ticket.status = state.status
    ticket.current_policy = state.policy
    ticket.calendar = state.calendar
    return state, taken


def _row_of(ticket: Any) -> tuple[Any, ...]:
    """Every column of a ticket row not inserted yet, in `TICKET_COLUMNS` order."""
    values = ticket.__dict__
    return tuple(values[name] for name in TICKET_COLUMNS)
