"""One chunk of import lines, written in the caller's transaction.

Lines are decided in file order, each as its single call would be (`TicketService`,
`CreditService`), with the same checks and the same credit plans, so the rows are the ones
single calls leave. What makes it fast:

- the chunk's tickets, their stored event ids and the accounts' ledgers are read up front in
  a few queries; a repeated ticket or event id is then a duplicate without touching the log;
- a ticket the chunk creates collects its clock events in memory, is replayed once at the
  end, and its ticket row, events, metric rows and ledger entries are inserted in bulk, its
  escalation timers planned once from its final state (`new_tickets`; the timer hook in
  `history` mode makes that the same as planning after each event);
- a clock event on a ticket stored before the chunk waits with that ticket's others; at the
  end they are inserted together and those tickets are refreshed together, each replayed
  once (`TicketService.refresh_many_in_session`: metric rows, saved clock and hooks);
- a credit event (it moves credits, or opens a ticket) goes through `TicketService` in a
  savepoint, after what its call reads is written: its ticket (a new one with its events, a
  stored one with its waiting events, refreshed) and its account's planned ledger entries;
  the rest of the chunk waits for its end (`finish`), written in one go.

A line that fails writes nothing: a decision in memory is taken only when it succeeds, and
a single call runs in a savepoint rolled back on its error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.core.products import legacy_flag
from sla_engine.credits import plans
from sla_engine.credits.credit_hook import CreditHook
from sla_engine.errors import Conflict, InputError, NotFound, SlaEngineError
from sla_engine.escalation.timers import EscalationTimerHook
from sla_engine.ingest import credit_books, new_ticket_hooks
from sla_engine.ingest.bulk_rows import in_batches, insert_rows
from sla_engine.ingest.credit_books import CreditBooks
from sla_engine.ingest.jsonl import (
    EventLine,
    GrantLine,
    Line,
    LineError,
    SubscriptionLine,
    TicketLine,
    parse_line,
)
from sla_engine.ingest.line_results import Counts, Reject, error_text
from sla_engine.ingest.new_tickets import (
    EVENT_COLUMNS,
    EVENTS_TABLE,
    NewTicket,
    NewTicketRow,
    write_new_tickets,
)
from sla_engine.storage.models import Ticket, TicketEvent
from sla_engine.ticket_queue import QueueHook
from sla_engine.tickets import (
    CREDIT_EVENT_TYPES,
    EventCreate,
    TicketCreate,
    TicketService,
    check_event_request,
    check_ticket_request,
)
from sla_engine.tickets.requests import EVENT_TYPES, check_aware, check_identifier

# The hooks whose work on a new ticket the bulk path does itself (credits) or runs once per
# ticket on its final state (timers, queue keys): their `on_create` and `on_event` do nothing
# for clock events. With any other hook every line takes the single-call path.
BULK_HOOKS = (CreditHook, EscalationTimerHook, QueueHook)
T = TypeVar("T")


class ChunkWriter:
    """Writes chunks of lines for one import run; keeps the run's grant occurrences and the
    accounts' books between chunks."""

    def __init__(self, tickets: TicketService) -> None:
        self.tickets = tickets
        self.config = tickets.config
        self.policies = tickets.config.policies
        self.books = CreditBooks()
        self.requests_seen: Counter[tuple[str, credit_books.Signature]] = Counter()
        self.state_hooks = [h for h in tickets.hooks if not isinstance(h, CreditHook)]
        self.new_ticket_steps = new_ticket_hooks.for_new_tickets(self.state_hooks)
        self.bulk = all(isinstance(h, BULK_HOOKS) for h in tickets.hooks)

    def forget(self) -> None:
        """Drop what is cached from the database (after a rolled-back chunk)."""
        self.books.forget()

    def note_seen(self, line: Line) -> None:
        """Count a grant or subscription line of an earlier run of the same file (resume)."""
        if isinstance(line, GrantLine):
            try:
                draft = plans.plan_grant(
                    line.kind,
                    line.occurred_at,
                    quantity=line.quantity,
                    price_per_ticket=line.price_per_ticket,
                    package=line.package,
                )
            except SlaEngineError:
                return
            self.requests_seen[(line.account, credit_books.grant_signature(line.kind, draft))] += 1
        elif isinstance(line, SubscriptionLine):
            sig = credit_books.subscription_signature(line.kind, line.start, line.end)
            self.requests_seen[(line.account, sig)] += 1

    def write(
        self, session: Session, numbered: Sequence[tuple[int, str]], now: datetime
    ) -> tuple[Counts, list[Reject]]:
        chunk = self.decide(session, parse_lines(numbered), now)
        return chunk.finish()

    def decide(self, session: Session, parsed: Sequence[Parsed], now: datetime) -> Chunk:
        """Decide the chunk's lines (writing what credit events read); `finish()` writes the
        rest (it may run in another thread: only it uses the session and the books then)."""
        chunk = Chunk(self, session, now)
        chunk.run(parsed)
        return chunk


Parsed = tuple[int, str, Line | LineError]


def parse_lines(numbered: Sequence[tuple[int, str]]) -> list[Parsed]:
    """The chunk's lines parsed (pure: no database, no state)."""
    parsed: list[Parsed] = []
    for number, text in numbered:
        try:
            parsed.append((number, text, parse_line(text)))
        except LineError as exc:
            parsed.append((number, text, exc))
    return parsed


class Chunk:
    """The state of one chunk while its lines are decided."""

    def __init__(self, writer: ChunkWriter, session: Session, now: datetime) -> None:
        self.writer = writer
        self.tickets = writer.tickets
        self.session = session
        self.now = now
        self.counts = Counts()
        self.rejects: list[Reject] = []
        self.new: dict[str, NewTicket] = {}
        self.new_events: list[tuple[str, EventCreate]] = []
        self.stored: dict[str, Ticket] = {}
        self.stored_events: dict[str, set[str]] = {}
        self.appends: dict[str, list[EventCreate]] = {}

    # -- the chunk --------------------------------------------------------------------------

    def run(self, parsed: Sequence[Parsed]) -> None:
        self.counts.lines = len(parsed)
        self._read_stored([p for _, _, p in parsed if not isinstance(p, LineError)])
        for number, text, line in parsed:
            try:
                if isinstance(line, LineError):
                    raise InputError(line.message)
                self._decide(line)
            except SlaEngineError as exc:
                self._reject(number, text, error_text(exc))

    def finish(self) -> tuple[Counts, list[Reject]]:
        """Write what the chunk planned; its counts and rejects."""
        self._write_planned()
        return self.counts, self.rejects

    def _reject(self, number: int, text: str, error: str) -> None:
        self.counts.rejected += 1
        self.rejects.append(Reject(number, error, text.rstrip("\r\n")))

    def _decide(self, line: Line) -> None:
        if isinstance(line, EventLine):
            self._event(line.ticket_id, line.request)
        elif isinstance(line, TicketLine):
            self._ticket(line.request)
        elif isinstance(line, GrantLine):
            self._grant(line)
        else:
            self._subscription(line)

    def _read_stored(self, lines: Iterable[Line]) -> None:
        """The tickets the chunk names, their stored event ids, and the accounts' books."""
        ids: set[str] = set()
        accounts: set[str] = set()
        for line in lines:
            if isinstance(line, EventLine):
                ids.add(line.ticket_id)
            elif isinstance(line, TicketLine):
                ids.add(line.request.id)
                if line.request.account is not None:
                    accounts.add(line.request.account)
            else:
                accounts.add(line.account)
        for part in in_batches(sorted(ids)):
            for ticket in self.session.scalars(sa.select(Ticket).where(Ticket.id.in_(part))):
                self.stored[ticket.id] = ticket
                self.stored_events[ticket.id] = set()
        for part in in_batches(sorted(self.stored)):
            rows = self.session.execute(
                sa.select(TicketEvent.ticket_id, TicketEvent.event_id).where(
                    TicketEvent.ticket_id.in_(part)
                )
            )
            for ticket_id, event_id in rows:
                self.stored_events[ticket_id].add(event_id)
        self.writer.books.begin_chunk()
        self.writer.books.load(self.session, accounts, self.now)

    def _write_planned(self) -> None:
        """Write what is decided but not yet written (before a single call reads it)."""
        self._write_new()
        self._write_appends()
        self.writer.books.write(self.session, self.now)

    # -- tickets ----------------------------------------------------------------------------

    def _ticket(self, req: TicketCreate) -> None:
        check_ticket_request(req, self.writer.policies)
        new = self.new.get(req.id)
        if new is not None or req.id in self.stored:
            earlier = new.request if new is not None else self.stored[req.id]
            self._repeat(req, earlier)
            return
        if not self.writer.bulk:
            self._single(lambda: self.tickets.create_in_session(self.session, req, self.now))
            self._stored_now(req.id)
            self.counts.tickets += 1
            return
        calendar = getattr(req, "calendar", None)
        if calendar is not None:
            self.tickets.check_calendar(calendar)
        if req.account is not None:
            book = self._book(req.account)
            created_at = req.created_at.astimezone(UTC)  # the stored row's, as hooks see it
            drafts = plans.plan_submission(
                book.ledger, req.account, req.id, req.policy, created_at, self.now
            )
            book.add(drafts)
        legacy = legacy_flag(req.product, req.version, self.writer.config.products)
        self.new[req.id] = NewTicket(req, legacy)
        self.counts.tickets += 1

    def _repeat(self, req: TicketCreate, earlier: Any) -> None:
        """The same ticket again is a duplicate; another under a used id, a conflict."""
        differing = [
            name
            for name, theirs in (
                ("policy", earlier.policy),
                ("created_at", earlier.created_at),
                ("account", earlier.account),
                ("product", earlier.product),
                ("version", earlier.version),
                ("calendar", _initial_calendar(earlier)),
            )
            if getattr(req, name, None) != theirs
        ]
        if differing:
            raise Conflict(
                f"ticket {req.id!r} already exists with a different {', '.join(differing)}",
                field="id",
                value=req.id,
            )
        self.counts.duplicates += 1

    # -- events -----------------------------------------------------------------------------

    def _event(self, ticket_id: str, req: EventCreate) -> None:
        _check_event(req, self.writer.policies)
        new = self.new.get(ticket_id)
        seen = new.event_ids if new is not None else self.stored_events.get(ticket_id)
        if seen is None:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        if req.event_id in seen:
            self.counts.duplicates += 1
            return
        ticket = new.request if new is not None else self.stored[ticket_id]
        created_at = ticket.created_at.astimezone(UTC)  # as stored
        if req.occurred_at < created_at:
            raise InputError(
                f"occurred_at {req.occurred_at.isoformat()} is before the ticket's created_at "
                f"{created_at.isoformat()}",
                field="occurred_at",
                value=req.occurred_at.isoformat(),
            )
        if req.type == "calendar_changed" and req.data.get("calendar") is not None:
            self.tickets.check_calendar(req.data["calendar"])
        if req.type in CREDIT_EVENT_TYPES or not self.writer.bulk:
            self._single_event(ticket_id, req)
            return
        if new is not None:
            new.events.append(req)
            self.new_events.append((ticket_id, req))
        else:
            self.appends.setdefault(ticket_id, []).append(req)
        seen.add(req.event_id)
        self.counts.events += 1

    def _single_event(self, ticket_id: str, req: EventCreate) -> None:
        """An event through the ticket service (it may move credits or open a ticket)."""
        if self.writer.bulk:
            self._write_read_by(ticket_id, req)
        else:
            self._write_planned()
        answer = self._single(
            lambda: self.tickets.add_event_in_session(self.session, ticket_id, req, self.now)
        )
        self.stored_events[ticket_id].add(req.event_id)
        if answer.get("duplicate"):
            self.counts.duplicates += 1
            return
        self.counts.events += 1
        if req.type in CREDIT_EVENT_TYPES:
            account = getattr(self.stored.get(ticket_id), "account", None)
            if account is not None:  # the call may have appended to its ledger
                self.writer.books.drop(account)
            new_id = req.data.get("new_ticket_id") if req.type == "split" else None
            if isinstance(new_id, str):
                self._stored_now(new_id)

    def _write_read_by(self, ticket_id: str, req: EventCreate) -> None:
        """Write what a credit event's single call reads, the rest of the chunk waiting for
        its end: the ticket (a new one with its events; a stored one's waiting events and
        refresh) and its account's planned ledger entries. A split naming a ticket this
        chunk plans writes everything first (the call then finds it and refuses)."""
        new_id = req.data.get("new_ticket_id") if req.type == "split" else None
        if isinstance(new_id, str) and new_id in self.new:
            self._write_planned()
            return
        new = self.new.get(ticket_id)
        if new is not None:
            account = new.request.account
            self._write_new([ticket_id])
        else:
            account = getattr(self.stored.get(ticket_id), "account", None)
            if ticket_id in self.appends:
                self._write_appends([ticket_id])
        if account is not None:
            self.writer.books.write(self.session, self.now, [account])

    def _single(self, call: Callable[[], T]) -> T:
        """A single call in a savepoint: its error leaves nothing behind."""
        with self.session.begin_nested():
            return call()

    def _stored_now(self, ticket_id: str) -> None:
        self.stored_events.setdefault(ticket_id, set())
        ticket = self.session.get(Ticket, ticket_id)
        if ticket is not None:
            self.stored[ticket_id] = ticket

    # -- credits ----------------------------------------------------------------------------

    def _book(self, account: str) -> credit_books.Book:
        books = self.writer.books
        if account not in books.loaded:
            books.load(self.session, [account], self.now)
        return books.book(account)

    def _grant(self, line: GrantLine) -> None:
        book = self._book(line.account)
        signature, draft = credit_books.plan_grant(book, line)
        if self._repeated(line.account, signature, book):
            return
        book.add([draft])
        self.counts.grants += 1

    def _subscription(self, line: SubscriptionLine) -> None:
        book = self._book(line.account)
        signature, draft = credit_books.plan_subscription(book, line)
        if self._repeated(line.account, signature, book):
            return
        book.add([draft])
        self.counts.subscriptions += 1

    def _repeated(self, account: str, signature: Any, book: credit_books.Book) -> bool:
        seen = self.writer.requests_seen
        seen[(account, signature)] += 1
        if book.requests[signature] >= seen[(account, signature)]:
            self.counts.duplicates += 1
            return True
        return False

    # -- the bulk parts -----------------------------------------------------------------------

    def _write_new(self, only: Sequence[str] | None = None) -> None:
        """Insert the tickets planned so far, or `only` those
        (`new_tickets.write_new_tickets`)."""
        if not self.new:
            return
        if only is None:
            new = self.new
            # in the order decided, without the tickets written before (for a credit event)
            events = [(t, e) for t, e in self.new_events if t in new]
        else:
            new = {ticket_id: self.new[ticket_id] for ticket_id in only}
            events = [(t, e) for t in only for e in new[t].events]
        written = write_new_tickets(
            self.session, self.tickets, self.writer.new_ticket_steps, new, events, self.now
        )
        for ticket_id, row in written.items():
            self.stored[ticket_id] = row  # type: ignore[assignment]
            self.stored_events[ticket_id] = new[ticket_id].event_ids
        self.session.flush()
        if only is None:
            self.new.clear()
            self.new_events.clear()
        else:
            for ticket_id in only:
                del self.new[ticket_id]

    def _write_appends(self, only: Sequence[str] | None = None) -> None:
        """Insert the events waiting for stored tickets (or `only` those); refresh them
        together, each replayed once (`TicketService.refresh_many_in_session`: a few
        statements for all)."""
        if not self.appends:
            return
        now = self.now
        ids = sorted(self.appends) if only is None else sorted(only)
        for part in in_batches(ids):  # lock them, in a stable order
            self.session.execute(
                sa.select(Ticket.id)
                .where(Ticket.id.in_(part))
                .order_by(Ticket.id)
                .with_for_update()
            ).all()
        insert_rows(
            self.session,
            EVENTS_TABLE,
            EVENT_COLUMNS,
            (
                (ticket_id, e.event_id, e.type, e.occurred_at, e.data, now)
                for ticket_id in ids
                for e in self.appends[ticket_id]
            ),
        )
        self.tickets.refresh_many_in_session(self.session, ids, now)
        for ticket_id in ids:
            del self.appends[ticket_id]


_PLAIN_TYPES = EVENT_TYPES - {"policy_changed", "calendar_changed"}


def _check_event(req: EventCreate, policies: Any) -> None:
    """`check_event_request`, with the same errors; an event without fields of a type that
    needs none is checked without encoding its (empty) fields."""
    if req.data or req.type not in _PLAIN_TYPES:
        check_event_request(req, policies)
        return
    check_identifier(req.event_id, "event_id")
    check_aware(req.occurred_at, "occurred_at")


def _initial_calendar(ticket: Any) -> str | None:
    if isinstance(ticket, Ticket | NewTicketRow):
        calendar: str | None = ticket.initial_calendar  # type: ignore[union-attr]
        return calendar
    return getattr(ticket, "calendar", None)  # a TicketCreate
