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
`ticket_queue_calendars` row carrying the same keys, for the `calendar=` filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from sla_engine.core.clock import TicketState
from sla_engine.storage.models import NO_BREACH, PAUSED, Ticket, TicketQueueCalendar

CALENDARS = cast(Table, TicketQueueCalendar.__table__)


@dataclass(frozen=True)
class QueueKeys:
    queue_breach_at: datetime
    stopped_late: bool
    calendars: frozenset[str]


def queue_keys(state: TicketState) -> QueueKeys:
    """The ticket's queue keys for `state` (pure)."""
    running = [m for m in state.metrics.values() if m.running]
    ticking = [m.breach_at for m in running if m.status != "paused"]
    key = min(ticking, default=PAUSED if running else NO_BREACH)
    return QueueKeys(
        queue_breach_at=key,
        stopped_late=any(not m.running and m.status == "breached" for m in state.metrics.values()),
        calendars=frozenset(m.calendar for m in running),
    )


class QueueHook:
    """Writes the queue keys in the ticket write's own transaction.

    The ticket row's keys go through the ORM, which flushes only what changed; the calendar
    rows are read (one primary-key range) and rewritten only when they differ.
    """

    def on_create(self, session: Session, ticket: Ticket, request: Any, now: datetime) -> None:
        return None

    def on_event(self, session: Session, ticket: Ticket, event: Any, now: datetime) -> None:
        return None

    def on_state(self, session: Session, ticket: Ticket, state: TicketState, now: datetime) -> None:
        keys = queue_keys(state)
        if ticket.queue_breach_at != keys.queue_breach_at:
            ticket.queue_breach_at = keys.queue_breach_at
        if ticket.stopped_late != keys.stopped_late:
            ticket.stopped_late = keys.stopped_late
        sync_calendars(session, ticket.id, state.status, ticket.created_at, keys)


def sync_calendars(
    session: Session, ticket_id: str, status: str, created_at: datetime, keys: QueueKeys
) -> None:
    """Make the ticket's `ticket_queue_calendars` rows those of `keys`."""
    stored = {
        row.calendar: (row.status, row.queue_breach_at)
        for row in session.execute(
            select(CALENDARS.c.calendar, CALENDARS.c.status, CALENDARS.c.queue_breach_at).where(
                CALENDARS.c.ticket_id == ticket_id
            )
        )
    }
    wanted = (status, keys.queue_breach_at)
    gone = [name for name in stored if name not in keys.calendars]
    if gone:
        session.execute(
            delete(CALENDARS).where(
                CALENDARS.c.ticket_id == ticket_id, CALENDARS.c.calendar.in_(gone)
            )
        )
    changed = [name for name in keys.calendars if name in stored and stored[name] != wanted]
    if changed:
        session.execute(
            update(CALENDARS)
            .where(CALENDARS.c.ticket_id == ticket_id, CALENDARS.c.calendar.in_(changed))
            .values(status=status, queue_breach_at=keys.queue_breach_at)
        )
    added = [name for name in keys.calendars if name not in stored]
    if added:
        session.execute(
            insert(CALENDARS),
            [
                {
                    "ticket_id": ticket_id,
                    "calendar": name,
                    "status": status,
                    "queue_breach_at": keys.queue_breach_at,
                    "created_at": created_at,
                }
                for name in sorted(added)
            ],
        )
