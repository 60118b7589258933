"""The queue's keys of a ticket, kept up to date by a ticket hook in each ticket write.

From the SLA state a write stores, the ticket row gets (both indexed):

- `queue_breach_at`: the earliest `breach_at` among the running metrics whose clock runs
  (active, or breached and not yet stopped). A paused metric cannot breach while paused and
  its `breach_at` recedes as the pause lasts, so a ticket whose running metrics are all
  paused gets `PAUSED` (after every running clock), and one with nothing running
  `NO_BREACH` (last).
- `stopped_late`: a metric stopped after its deadline.

So the ticket is breached at `now` exactly when `queue_breach_at < now or stopped_late`, with
no write needed when a deadline passes. Each calendar in which a running metric accrues gets a
`ticket_queue_calendars` row carrying the same key, for the `calendar=` filter; the ticket
row's `queue_calendars` lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, delete, insert
from sqlalchemy.orm import Session

from sla_engine.core.clock import Event, TicketState
from sla_engine.core.times import EPOCH
from sla_engine.storage.bulk_update import update_rows
from sla_engine.storage.models import NO_BREACH, PAUSED, Ticket, TicketQueueCalendar
from sla_engine.storage.write_connection import connection_of
from sla_engine.tickets import TicketCreate

CALENDARS = cast(Table, TicketQueueCalendar.__table__)


class KeyedTicket(Protocol):
    """A ticket row the keys go on: the ORM `Ticket`, or a new ticket of a bulk import."""

    id: str
    created_at: datetime
    queue_breach_at: datetime
    stopped_late: bool
    queue_calendars: str


QueueCalendarRow = dict[str, object]
"""A `ticket_queue_calendars` row to insert: ticket_id, calendar, queue_breach_at, created_at."""


@dataclass(frozen=True)
class QueueKeys:
    queue_breach_at: datetime
    stopped_late: bool
    calendars: frozenset[str]


def queue_keys(state: TicketState) -> QueueKeys:
    """The ticket's queue keys for `state` (pure). The key is a plain UTC `datetime` (the
    same instant as the metric's): it compares with the stored one in C, where a calendar's
    own instant type compares in Python."""
    running = [m for m in state.metrics.values() if m.running]
    ticking = [m.breach_at for m in running if m.status != "paused"]
    key = min(ticking, default=PAUSED if running else NO_BREACH)
    return QueueKeys(
        queue_breach_at=EPOCH + (key - EPOCH),
        stopped_late=any(not m.running and m.status == "breached" for m in state.metrics.values()),
        calendars=frozenset(m.calendar for m in running),
    )


class QueueHook:
    """Writes the queue keys in the ticket write's own transaction.

    The ticket row's keys go on the ticket object (the ticket service writes what changed).
    The calendar rows are rewritten only when the row's keys or its calendars changed, judged
    from the ticket row itself (`queue_calendars` names the rows there are), so nothing is
    read back. `on_states` does it for a batch of tickets with one statement of each kind.
    """

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None:
        return None

    def on_event(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        return None

    def on_state(self, session: Session, ticket: Ticket, state: TicketState, now: datetime) -> None:
        self.on_states(session, [(ticket, state)], now)

    def on_states(
        self, session: Session, items: Sequence[tuple[KeyedTicket, TicketState]], now: datetime
    ) -> None:
        """`on_state` for many tickets (each at most once): one DELETE, one INSERT and one
        UPDATE for all of them."""
        self.prepare_states(session, items, now).write(session, set())

    def prepare_states(
        self, reader: object, items: Sequence[tuple[KeyedTicket, TicketState]], now: datetime
    ) -> PlannedQueueRows:
        """The keys put on the tickets (the ticket write saves them) and the calendar rows
        to write (`PlannedQueueRows.write`); nothing is read (`reader` is not used)."""
        planned = PlannedQueueRows()
        for ticket, state in items:
            keys = queue_keys(state)
            key_before, calendars_before = ticket.queue_breach_at, ticket.queue_calendars
            rows = set_keys(ticket, keys)
            if ticket.queue_calendars != calendars_before:
                if calendars_before:
                    planned.dropped.append(ticket.id)
                planned.added.extend(rows)
            elif rows and ticket.queue_breach_at != key_before:
                planned.moved.append((ticket.id, keys.queue_breach_at))
        return planned


@dataclass
class PlannedQueueRows:
    """The `ticket_queue_calendars` writes of a batch (`QueueHook.prepare_states`)."""

    dropped: list[str] = field(default_factory=list)
    added: list[QueueCalendarRow] = field(default_factory=list)
    moved: list[tuple[str, datetime]] = field(default_factory=list)

    def changed(self, session: Session) -> set[str]:
        """None: these rows follow the ticket row's keys, which the batch checks itself."""
        return set()

    def write(self, session: Session, skip: set[str]) -> None:
        """One DELETE, one INSERT and one UPDATE, but for the tickets in `skip`."""
        dropped = [t for t in self.dropped if t not in skip]
        added = [row for row in self.added if row["ticket_id"] not in skip]
        moved = [item for item in self.moved if item[0] not in skip]
        conn = connection_of(session)
        if dropped:
            conn.execute(delete(CALENDARS).where(CALENDARS.c.ticket_id.in_(dropped)))
        if added:
            conn.execute(insert(CALENDARS), added)
        update_rows(conn, CALENDARS, ("ticket_id", "queue_breach_at"), moved)


def set_keys(ticket: KeyedTicket, keys: QueueKeys) -> list[QueueCalendarRow]:
    """Put `keys` on the ticket row (ORM object or any object with its attributes); the
    `ticket_queue_calendars` rows that go with them. The bulk import path uses this too."""
    if ticket.queue_breach_at != keys.queue_breach_at:
        ticket.queue_breach_at = keys.queue_breach_at
    if ticket.stopped_late != keys.stopped_late:
        ticket.stopped_late = keys.stopped_late
    names = sorted(keys.calendars)
    listed = "\n".join(names)
    if ticket.queue_calendars != listed:
        ticket.queue_calendars = listed
    return [
        {
            "ticket_id": ticket.id,
            "calendar": name,
            "queue_breach_at": keys.queue_breach_at,
            "created_at": ticket.created_at,
        }
        for name in names
    ]
