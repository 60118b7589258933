"""TicketService: tickets and their event logs, one transaction per request.

Each write locks the ticket row, appends to the log and brings the ticket's saved clock up to
date (`ticket_clock`: an event in order is applied to the saved replay, a late one replays
from a checkpoint), then stores the derived ticket fields and each metric's current cycle.
Events may arrive late, out of order or twice and the stored answer is the one the whole-log
replay gives. Hooks (credits, escalation timers, the queue keys) run inside the same
transaction: one that raises rolls the whole request back.

An event write in order costs a fixed handful of statements whatever the log's length: the
ticket lock (with its saved clock), the event insert (which also detects a repeated
event_id; on PostgreSQL one statement with the lock, `event_insert`), the metric rows
(written only where they changed), the ticket row. An event write
that loses a race to another transaction (a unique key taken first, a deadlock) is rolled back
and replayed from the start, so concurrent clients never see it as a server error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.calendar_source import CalendarSource
from sla_engine.core.clock import Event, TicketState, evaluate
from sla_engine.core.times import require_aware, utcnow
from sla_engine.errors import Conflict, InputError, NotFound, SlaEngineError
from sla_engine.json_types import JsonObject
from sla_engine.storage.models import Ticket
from sla_engine.storage.write_connection import write_on_connection
from sla_engine.tickets import event_insert, metric_rows, store
from sla_engine.tickets.recent_calendars import RecentCalendars
from sla_engine.tickets.refresh import PreparedBatch, prepare_many, refresh_many, write_prepared
from sla_engine.tickets.requests import (
    EventCreate,
    TicketCreate,
    check_event_request,
    check_ticket_request,
)
from sla_engine.tickets.saved_clock import SavedClock, TrackedCalendars
from sla_engine.tickets.store import LoadedTicket, LogRow, StoredEvent, clock_event, is_transient
from sla_engine.tickets.ticket_clock import ClockTicket, TicketClocks
from sla_engine.tickets.views import event_view, ticket_view

__all__ = ["TicketHook", "TicketService", "utcnow"]


class TicketHook(Protocol):
    """Another part's reaction to ticket writes; everything runs in the request's transaction."""

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None: ...

    def on_event(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None: ...

    def on_state(
        self, session: Session, ticket: Ticket, state: TicketState, now: datetime
    ) -> None: ...


class TicketService:
    """Ticket writes and reads over storage and the pure clock.

    ``calendars`` is where calendars come from: the current state uses every version known,
    an answer about an instant X (``sla(at=X)``) the versions known at X.
    """

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        config: ServiceConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        hooks: Sequence[TicketHook] = (),
        calendars: CalendarSource | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.config = config
        self.clock = clock
        self.hooks: list[TicketHook] = list(hooks)
        self._combined_by_engine: dict[Engine, bool] = {}
        self.calendars = calendars if calendars is not None else RecentCalendars()

    @property
    def calendars(self) -> CalendarSource:
        return self._calendars

    @calendars.setter
    def calendars(self, source: CalendarSource) -> None:
        self._calendars = source
        self.clocks = TicketClocks(self.config.policies, source)

    def add_hook(self, hook: TicketHook) -> None:
        self.hooks.append(hook)

    # -- requests: one transaction each --

    def create_ticket(self, req: TicketCreate) -> JsonObject:
        """Open a ticket; the same request again returns it, a different one is a Conflict."""
        check_ticket_request(req, self.config.policies)
        for attempt in (1, 2):
            now = self.clock()
            try:
                with self.sessionmaker() as session, session.begin():
                    return self.create_in_session(session, req, now)
            except IntegrityError:
                # Another request inserted the same id between our read and our insert:
                # the retry sees it and answers as for any repeated id.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def add_event(self, ticket_id: str, req: EventCreate) -> JsonObject:
        """Append an event; an event_id already stored is a no-op answered with `duplicate`."""
        check_event_request(req, self.config.policies)
        for attempt in (1, 2, 3):
            now = self.clock()
            committing = False
            try:
                # the transaction on a connection of its own, the ORM session started only
                # if a hook uses it (`write_on_connection`)
                with write_on_connection(self.sessionmaker) as session:
                    answer = self._append_event(session, ticket_id, req, now)
                    committing = True
                return answer
            except (IntegrityError, OperationalError) as exc:
                # A concurrent transaction won a race (a row it inserted first, a deadlock),
                # or the pooled connection had been ended by the server (pooled connections
                # in use are not pinged): everything was rolled back, so the request is
                # replayed from the start. A connection lost during COMMIT is not retried
                # (whether the event was stored is unknown).
                lost = exc.connection_invalidated and not committing
                if attempt == 3 or not (lost or is_transient(exc)):
                    raise
        raise AssertionError("unreachable")

    def refresh(self, ticket_id: str) -> TicketState:
        """Replay the ticket's whole log with the calendars as they are now and store the
        result (metric rows, saved clock, hooks' plans): after a calendar version is added."""
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            return self.refresh_in_session(session, ticket_id, now)

    def get_ticket(self, ticket_id: str) -> JsonObject:
        """The ticket's fields, its events in replay order and its SLA state now."""
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            ticket = self._find(session, ticket_id).ticket
            rows = store.event_rows(session, ticket.id)
            state = self._current(session, ticket, now, rows)
            return self._ticket_answer(ticket, rows, state)

    def sla(self, ticket_id: str, at: datetime | None = None) -> TicketState:
        """The ticket's SLA state now, or at `at` with the calendar versions known then."""
        when = self.clock() if at is None else require_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            return self.state_in_session(session, ticket_id, when, past=at is not None)

    # -- building blocks for hooks and batches that work inside the caller's transaction --

    def create_in_session(self, session: Session, req: TicketCreate, now: datetime) -> JsonObject:
        """Create a ticket inside `session`'s transaction (e.g. a split creating a ticket)."""
        check_ticket_request(req, self.config.policies)
        existing = self._find(session, req.id, lock=True, missing_ok=True)
        if existing is not None:
            return self._repeat_create(session, existing.ticket, req, now)
        if req.calendar is not None:
            self.check_calendar(req.calendar)
        loaded = store.insert_ticket(
            session,
            {
                "id": req.id,
                "policy": req.policy,
                "current_policy": req.policy,
                "created_at": req.created_at,
                "account": req.account,
                "product": req.product,
                "version": req.version,
                "legacy": None,
                "status": "open",
                "received_at": now,
                "initial_calendar": req.calendar,
                "calendar": req.calendar,
            },
        )
        for hook in self.hooks:
            hook.on_create(session, loaded.ticket, req, now)
        state = self._store(session, loaded, self.clocks.begin(loaded.ticket), now)
        return {**self._ticket_answer(loaded.ticket, [], state), "created": True}

    def add_event_in_session(
        self, session: Session, ticket_id: str, req: EventCreate, now: datetime
    ) -> JsonObject:
        """Append an event inside `session`'s transaction, holding the ticket row's lock.

        Usable inside a caller's transaction or savepoint (a batch runs each item in one)."""
        check_event_request(req, self.config.policies)
        return self._append_event(session, ticket_id, req, now)

    def _append_event(
        self, session: Session, ticket_id: str, req: EventCreate, now: datetime
    ) -> JsonObject:
        """`add_event_in_session` for a request already checked."""
        loaded, row = self._lock_and_insert(session, ticket_id, req, now)
        ticket = loaded.ticket
        if req.occurred_at < ticket.created_at:
            stored = store.find_event(session, ticket.id, req.event_id)
            if stored is not None:
                return self._duplicate(session, ticket, stored, now)
            raise InputError(
                f"occurred_at {req.occurred_at.isoformat()} is before the ticket's created_at "
                f"{ticket.created_at.isoformat()}",
                field="occurred_at",
                value=req.occurred_at.isoformat(),
            )
        if row is False:
            if req.type == "calendar_changed" and req.data.get("calendar") is not None:
                self.check_calendar(req.data["calendar"])
            row = store.insert_new_event(
                session, ticket.id, req.event_id, req.type, req.occurred_at, req.data, now
            )
        if row is None:
            stored = store.find_event(session, ticket.id, req.event_id)
            assert stored is not None
            return self._duplicate(session, ticket, stored, now)
        for hook in self.hooks:
            hook.on_event(session, ticket, clock_event(row), now)
        clock = self.clocks.after_event(session, ticket, row)
        state = self._store(session, loaded, clock, now)
        return self._event_answer(ticket, row, state, duplicate=False)

    def _lock_and_insert(
        self, session: Session, ticket_id: str, req: EventCreate, now: datetime
    ) -> tuple[LoadedTicket, StoredEvent | Literal[False] | None]:
        """The ticket, locked, and the event: inserted in the same statement on PostgreSQL
        (None: not inserted, see `event_insert`), else not tried yet (False). A calendar
        change naming a calendar takes the two statements: its calendar is checked first."""
        if req.type == "calendar_changed" or not self._combined_insert(session):
            return self._find(session, ticket_id, lock=True), False
        found = event_insert.lock_and_insert(
            session, ticket_id, req.event_id, req.type, req.occurred_at, req.data, now
        )
        if found is None:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        return found

    def _combined_insert(self, session: Session) -> bool:
        """`event_insert.combined` for the sessionmaker's engine, known once (asking the
        session cost a `session.connection()` per event)."""
        bind = self.sessionmaker.kw.get("bind")
        if not isinstance(bind, Engine):
            return event_insert.combined(session)
        known = self._combined_by_engine.get(bind)
        if known is None:
            known = self._combined_by_engine[bind] = event_insert.combined(session)
        return known

    def refresh_in_session(self, session: Session, ticket_id: str, now: datetime) -> TicketState:
        """`refresh` inside `session`'s transaction (idempotent)."""
        loaded = self._find(session, ticket_id, lock=True)
        clock = self.clocks.rebuild(session, loaded.ticket)
        return self._store(session, loaded, clock, now, read_rows=True)

    def refresh_many_in_session(
        self, session: Session, ticket_ids: Sequence[str], now: datetime
    ) -> dict[str, TicketState]:
        """`refresh_in_session` for a batch of tickets at once (a few statements for all of
        them); unknown ids are skipped. Their states now, by id."""
        return refresh_many(session, self.clocks, self.hooks, ticket_ids, now)

    def prepare_refresh(
        self, reader: Connection, ticket_ids: Sequence[str], now: datetime
    ) -> PreparedBatch | None:
        """The reading and replaying half of `refresh_many_in_session`, on a connection
        outside the write transaction (nothing written; see `refresh.py`)."""
        return prepare_many(reader, self.clocks, self.hooks, ticket_ids, now)

    def write_refresh(
        self, session: Session, prepared: PreparedBatch | None, now: datetime
    ) -> list[str]:
        """Write a `prepare_refresh` batch in `session`'s transaction, the tickets written
        since it was read replayed again here; returns those."""
        if prepared is None:
            return []
        return write_prepared(session, self.clocks, self.hooks, prepared, now, check=True)

    def state_in_session(
        self, session: Session, ticket_id: str, at: datetime, *, past: bool = False
    ) -> TicketState:
        """The ticket's state at `at` as seen inside `session`'s transaction; with `past`,
        replayed with the calendar versions known at `at` (a change never rewrites what an
        answer about an earlier instant was)."""
        ticket = self._find(session, ticket_id).ticket
        if past:
            return self.evaluate_log(ticket, store.event_rows(session, ticket.id), at, past=True)
        return self._current(session, ticket, at)

    def evaluate_log(
        self, ticket: ClockTicket, rows: Sequence[LogRow], at: datetime, *, past: bool = False
    ) -> TicketState:
        """The state at `at` replayed from `rows` (the whole log, any order), in memory."""
        calendars = TrackedCalendars(self.calendars, known_at=at if past else None)
        return evaluate(
            ticket.id,
            ticket.policy,
            ticket.created_at,
            [clock_event(r) for r in rows],
            self.config.policies,
            at,
            calendars=calendars,
            ticket_calendar=ticket.initial_calendar,
        )

    def check_calendar(self, name: object, field: str = "calendar") -> str:
        """A calendar the source knows, else an InputError naming `field`."""
        if not isinstance(name, str):
            raise InputError(f"{field} must be a calendar name", field=field, value=name)
        try:
            self.calendars.calendar(name)
        except (SlaEngineError, OSError, LookupError, ValueError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            raise InputError(
                f"{field} {name!r} is not a known calendar ({reason})", field=field, value=name
            ) from None
        return name

    # -- internals --

    def _repeat_create(
        self, session: Session, existing: Ticket, req: TicketCreate, now: datetime
    ) -> JsonObject:
        differing = [
            name
            for name, new, old in (
                ("policy", req.policy, existing.policy),
                ("created_at", req.created_at, existing.created_at),
                ("account", req.account, existing.account),
                ("product", req.product, existing.product),
                ("version", req.version, existing.version),
                ("calendar", req.calendar, existing.initial_calendar),
            )
            if new != old
        ]
        if differing:
            raise Conflict(
                f"ticket {req.id!r} already exists with a different {', '.join(differing)}",
                field="id",
                value=req.id,
            )
        rows = store.event_rows(session, existing.id)
        state = self._current(session, existing, now, rows)
        return {**self._ticket_answer(existing, rows, state), "created": False}

    def _find(
        self, session: Session, ticket_id: str, *, lock: bool = False, missing_ok: bool = False
    ) -> LoadedTicket:
        loaded = store.find_ticket(session, ticket_id, lock=lock)
        if loaded is None and not missing_ok:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        return loaded  # type: ignore[return-value]

    def _current(
        self,
        session: Session,
        ticket: Ticket,
        now: datetime,
        rows: list[StoredEvent] | None = None,
    ) -> TicketState:
        """The state now: from the saved clock when it can be trusted, else replayed (from
        `rows` when the caller read the log already); nothing is written."""
        clock = self.clocks.resume(ticket)
        if clock is None:
            if rows is None:
                rows = store.event_rows(session, ticket.id)
            return self.evaluate_log(ticket, rows, now)
        return self.clocks.state(session, ticket, clock, now)

    def _store(
        self,
        session: Session,
        loaded: LoadedTicket,
        clock: SavedClock,
        now: datetime,
        *,
        read_rows: bool = False,
    ) -> TicketState:
        """Store the metric rows that changed, run on_state, then write the ticket row once:
        the derived fields, the saved clock (with the metric rows as written, so the next
        write need not read them) and whatever the hooks changed. The state now."""
        ticket = loaded.ticket
        state = self.clocks.state(session, ticket, clock, now)
        saved = None if read_rows else self.clocks.saved_rows(ticket)
        rows = metric_rows.store_metrics(session, ticket.id, state, now, saved)
        # a detached row object (`store.loaded_ticket`): its values set in place, as
        # `save_ticket` compares them with the stored ones (no ORM history needed)
        values = ticket.__dict__
        values["status"] = state.status
        values["current_policy"] = state.policy
        values["calendar"] = state.calendar
        values["clock_state"] = self.clocks.to_json(clock, rows)
        for hook in self.hooks:
            # A hook's batch form (`on_states`, as re-planning uses it) reads and writes plain
            # rows: with escalation rules, 270-280 -> 232-236 us of CPU per event on SQLite.
            many = getattr(hook, "on_states", None)
            if many is not None:
                many(session, [(ticket, state)], now)
            else:
                hook.on_state(session, ticket, state, now)
        store.save_ticket(session, loaded)
        return state

    def _duplicate(
        self, session: Session, ticket: Ticket, stored: StoredEvent, now: datetime
    ) -> JsonObject:
        return self._event_answer(ticket, stored, self._current(session, ticket, now), True)

    @staticmethod
    def _ticket_answer(ticket: Ticket, rows: Sequence[LogRow], state: TicketState) -> JsonObject:
        return {
            **ticket_view(ticket, state.calendar),
            "events": [event_view(r) for r in store.replay_sorted(rows)],
            "sla": state.to_json(),
        }

    @staticmethod
    def _event_answer(
        ticket: Ticket, row: LogRow, state: TicketState, duplicate: bool = False
    ) -> JsonObject:
        return {
            "ticket_id": ticket.id,
            "event": event_view(row),
            "duplicate": duplicate,
            "ticket": ticket_view(ticket, state.calendar),
            "sla": state.to_json(),
        }
