"""Re-planning many tickets at once (after a calendar version is added): the whole replay of
each, with a handful of statements per batch instead of per ticket.

Each ticket ends exactly as `TicketService.refresh_in_session` leaves it: its saved clock and
checkpoints rebuilt from the whole log with the current calendars, its metric rows and ticket
row rewritten where they changed, and the hooks' `on_state` run (escalation timers re-planned).

A batch is done in two steps. `prepare_many` reads the tickets, their logs, metric rows and
the rows of the hooks that can prepare (escalation timers), replays and plans, and writes
nothing. `write_prepared` then writes what was planned. `refresh_many` runs both in one
transaction (its reads lock the rows). A calendar re-plan on SQLite runs `prepare_many` on a
plain reading connection, outside the writer lock, and takes the lock only for
`write_prepared(check=True)`: it first reads the batch's ticket rows and timer rows again and
compares them with what was read; a ticket written meanwhile (an event, a firing) is left out
of the prepared writes and replayed again inside the write transaction, so what a concurrent
write stored is never overwritten by a plan made from older rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from sla_engine.core.clock import TicketState
from sla_engine.tickets import checkpoints, metric_rows, store
from sla_engine.tickets.checkpoints import Checkpoint
from sla_engine.tickets.store import LoadedTicket

if TYPE_CHECKING:
    from sla_engine.tickets.ticket_clock import TicketClocks
    from sla_engine.tickets.ticket_service import TicketHook

_ID = store.TICKET_COLUMNS.index("id")
_CLOCK = store.TICKET_COLUMNS.index("clock_state")
Reader = Session | Connection
"""Where a batch is read from: the write transaction's session, or a plain reading
connection (SQLite, outside the writer lock)."""


class PreparedHookWrites(Protocol):
    """What a hook planned for a batch (`prepare_states`), written by `write`."""

    def changed(self, session: Session) -> set[str]:
        """The tickets whose rows of this hook differ now from those the plan was made from
        (read again inside the write transaction, locked)."""
        ...

    def write(self, session: Session, skip: set[str]) -> None:
        """Write the plan, but for the tickets in `skip`."""
        ...


@dataclass
class PreparedBatch:
    """A batch replayed and planned, nothing written yet (see the module docstring)."""

    loaded: list[LoadedTicket]
    clocks_read: dict[str, str | None]
    """Each ticket's saved clock (JSON text) as read: compared again before writing, with
    `check` (every write of a ticket rewrites it; see `store.clock_texts`)."""
    states: dict[str, TicketState]
    taken: list[tuple[str, Checkpoint]]
    metrics: metric_rows.MetricWrites
    prepared_hooks: list[PreparedHookWrites] = field(default_factory=list)
    later_hooks: list[TicketHook] = field(default_factory=list)
    """Hooks that cannot prepare: run by `write_prepared` (in the write transaction)."""


def refresh_many(
    session: Session,
    clocks: TicketClocks,
    hooks: Sequence[TicketHook],
    ticket_ids: Sequence[str],
    now: datetime,
) -> dict[str, TicketState]:
    """Replay and store each of ``ticket_ids`` (unknown ids are skipped); their states now."""
    prepared = prepare_many(session, clocks, hooks, ticket_ids, now)
    if prepared is None:
        return {}
    write_prepared(session, clocks, hooks, prepared, now)
    return prepared.states


def prepare_many(
    reader: Reader,
    clocks: TicketClocks,
    hooks: Sequence[TicketHook],
    ticket_ids: Sequence[str],
    now: datetime,
) -> PreparedBatch | None:
    """Read, replay and plan ``ticket_ids`` (unknown ids are skipped); None when none is
    known. Nothing is written; the ticket objects get their new values."""
    conn = reader.connection() if isinstance(reader, Session) else reader
    rows = store.ticket_rows(conn, sorted(set(ticket_ids)))
    if not rows:
        return None
    loaded = store.loaded_tickets(rows)
    ids = [item.ticket.id for item in loaded]
    clocks_read = {row[_ID]: row[_CLOCK] for row in rows}
    logs = store.event_rows_of(conn, ids)
    stored = metric_rows.stored_rows(conn, ids)
    taken: list[tuple[str, Checkpoint]] = []
    states: dict[str, TicketState] = {}
    items = []
    for item in loaded:
        ticket = item.ticket
        log = logs[ticket.id]
        clock, points = clocks.rebuild_from_rows(ticket, log)
        taken.extend((ticket.id, point) for point in points)
        state = states[ticket.id] = clocks.state_from_rows(ticket, clock, log, now)
        items.append((ticket.id, state, stored[ticket.id], clock))
    metrics = metric_rows.plan_many([(t, s, old) for t, s, old, _ in items])
    dialect = conn.dialect.name
    for item, (ticket_id, state, _, clock) in zip(loaded, items, strict=True):
        # set on the detached object's own values, as `store.save_tickets` reads them (the
        # ORM's attribute events cost more than the rest of this loop)
        values = item.ticket.__dict__
        values["clock_state"] = clocks.to_json(clock, metrics.written[ticket_id])
        store.keep_same_clock(item, dialect)
        values["status"] = state.status
        values["current_policy"] = state.policy
        values["calendar"] = state.calendar
    prepared = PreparedBatch(loaded, clocks_read, states, taken, metrics)
    pairs = [(item.ticket, states[item.ticket.id]) for item in loaded]
    for hook in hooks:
        prepare = getattr(hook, "prepare_states", None)
        if prepare is None:
            prepared.later_hooks.append(hook)
            continue
        planned = prepare(reader, pairs, now)
        if planned is not None:
            prepared.prepared_hooks.append(planned)
    return prepared


def write_prepared(
    session: Session,
    clocks: TicketClocks,
    hooks: Sequence[TicketHook],
    prepared: PreparedBatch,
    now: datetime,
    *,
    check: bool = False,
) -> list[str]:
    """Write a prepared batch in `session`'s transaction. With `check` (the batch was read
    outside it) the ticket rows and hook rows are first read again, locked: the tickets
    written since are replayed again here (`refresh_many`) instead. Returns those."""
    ids = [item.ticket.id for item in prepared.loaded]
    redo: set[str] = set()
    if check:
        conn = session.connection()
        now_clocks = store.clock_texts(conn, ids)
        redo = {i for i in ids if now_clocks.get(i, False) != prepared.clocks_read[i]}
        for planned in prepared.prepared_hooks:
            redo |= planned.changed(session)
    kept = [item for item in prepared.loaded if item.ticket.id not in redo]
    kept_ids = [item.ticket.id for item in kept]
    if kept_ids:
        checkpoints.drop_all(session, kept_ids)
        checkpoints.add_many(session, [(t, c) for t, c in prepared.taken if t not in redo])
        metric_rows.write_plan(session, prepared.metrics, now, skip=redo)
    # Each hook reads and writes only its own tickets' rows, so the hooks run one after the
    # other over the whole batch: a prepared hook writes its plan with a few statements, one
    # with `on_states` runs it, another `on_state` per ticket. No ORM flush before every read.
    pairs = [(item.ticket, prepared.states[item.ticket.id]) for item in kept]
    with session.no_autoflush:
        for planned in prepared.prepared_hooks:
            planned.write(session, redo)
        for hook in prepared.later_hooks:
            if not pairs:
                break
            many = getattr(hook, "on_states", None)
            if many is not None:
                many(session, pairs, now)
                continue
            for ticket, state in pairs:
                hook.on_state(session, ticket, state, now)
    store.save_tickets(session, kept)
    again = sorted(redo)
    if again:
        refresh_many(session, clocks, hooks, again, now)
    return again
