"""TicketService: tickets and their event logs, one transaction per request.

Each write locks the ticket row, appends to the log, replays the whole log through the pure
clock and stores each metric's current cycle, so events may arrive late, out of order or
twice and the stored answer is the same. Hooks (credits, escalation timers, products) run
inside the same transaction: one that raises rolls the whole request back.

A write costs a handful of statements: the ticket lock, the log (one query, plain values),
the event insert, the metric rows (written only where they changed). An event write that
loses a race to another transaction (a unique key taken first, a deadlock) is rolled back
and replayed from the start, so concurrent clients never see it as a server error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.clock import Event, TicketState, evaluate
from sla_engine.errors import Conflict, InputError, NotFound
from sla_engine.storage.models import Ticket
from sla_engine.tickets import store
from sla_engine.tickets.recent_calendars import RecentCalendars
from sla_engine.tickets.requests import (
    EventCreate,
    TicketCreate,
    check_aware,
    check_event_request,
    check_ticket_request,
)
from sla_engine.tickets.store import LogRow, clock_event, is_transient
from sla_engine.tickets.views import event_view, ticket_view


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    """Ticket writes and reads over storage and the pure clock."""

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        config: ServiceConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        hooks: Sequence[TicketHook] = (),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.config = config
        self.clock = clock
        self.hooks: list[TicketHook] = list(hooks)
        self.calendars = RecentCalendars()

    def add_hook(self, hook: TicketHook) -> None:
        self.hooks.append(hook)

    # -- requests: one transaction each --

    def create_ticket(self, req: TicketCreate) -> dict[str, Any]:
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

    def add_event(self, ticket_id: str, req: EventCreate) -> dict[str, Any]:
        """Append an event; an event_id already stored is a no-op answered with `duplicate`."""
        check_event_request(req, self.config.policies)
        for attempt in (1, 2, 3):
            now = self.clock()
            try:
                with self.sessionmaker() as session, session.begin():
                    return self.add_event_in_session(session, ticket_id, req, now)
            except (IntegrityError, OperationalError) as exc:
                # A concurrent transaction won a race (a row it inserted first, a deadlock):
                # everything was rolled back, so the request is replayed from the start.
                if attempt == 3 or not is_transient(exc):
                    raise
        raise AssertionError("unreachable")

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket's fields, its events in replay order and its SLA state now."""
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            ticket = self._find(session, ticket_id)
            rows = self._event_rows(session, ticket.id)
            state = self._evaluate(ticket, rows, now)
            replay = store.replay_sorted(rows)
            return {
                **ticket_view(ticket),
                "events": [event_view(r) for r in replay],
                "sla": state.to_json(),
            }

    def sla(self, ticket_id: str, at: datetime | None = None) -> TicketState:
        """The ticket's SLA state at `at` (default: now), replayed from the whole log."""
        when = self.clock() if at is None else check_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            return self.state_in_session(session, ticket_id, when)

    # -- building blocks for hooks that work inside the current transaction --

    def create_in_session(
        self, session: Session, req: TicketCreate, now: datetime
    ) -> dict[str, Any]:
        """Create a ticket inside `session`'s transaction (e.g. a split creating a ticket)."""
        check_ticket_request(req, self.config.policies)
        existing = self._find(session, req.id, lock=True, missing_ok=True)
        if existing is not None:
            return self._repeat_create(session, existing, req, now)
        ticket = Ticket(
            id=req.id,
            policy=req.policy,
            current_policy=req.policy,
            created_at=req.created_at,
            account=req.account,
            product=req.product,
            version=req.version,
            legacy=None,
            status="open",
            received_at=now,
        )
        session.add(ticket)
        session.flush()
        for hook in self.hooks:
            hook.on_create(session, ticket, req, now)
        state = self._refresh(session, ticket, now, [])
        return {**ticket_view(ticket), "events": [], "sla": state.to_json(), "created": True}

    def add_event_in_session(
        self, session: Session, ticket_id: str, req: EventCreate, now: datetime
    ) -> dict[str, Any]:
        """Append an event inside `session`'s transaction, holding the ticket row's lock."""
        check_event_request(req, self.config.policies)
        ticket = self._find(session, ticket_id, lock=True)
        rows = self._event_rows(session, ticket.id)
        stored = next((r for r in rows if r.event_id == req.event_id), None)
        if stored is not None:
            state = self._evaluate(ticket, rows, now)
            return self._event_answer(ticket, stored, state, duplicate=True)
        if req.occurred_at < ticket.created_at:
            raise InputError(
                f"occurred_at {req.occurred_at.isoformat()} is before the ticket's created_at "
                f"{ticket.created_at.isoformat()}",
                field="occurred_at",
                value=req.occurred_at.isoformat(),
            )
        row = store.insert_event(
            session, ticket.id, req.event_id, req.type, req.occurred_at, req.data, now
        )
        event = clock_event(row)
        for hook in self.hooks:
            hook.on_event(session, ticket, event, now)
        state = self._refresh(session, ticket, now, [*rows, row])
        return self._event_answer(ticket, row, state, duplicate=False)

    def state_in_session(self, session: Session, ticket_id: str, now: datetime) -> TicketState:
        """The ticket's state at `now` as seen inside `session`'s transaction."""
        ticket = self._find(session, ticket_id)
        return self._evaluate(ticket, self._event_rows(session, ticket.id), now)

    # -- internals --

    def _repeat_create(
        self, session: Session, existing: Ticket, req: TicketCreate, now: datetime
    ) -> dict[str, Any]:
        differing = [
            name
            for name, new, old in (
                ("policy", req.policy, existing.policy),
                ("created_at", req.created_at, existing.created_at),
                ("account", req.account, existing.account),
                ("product", req.product, existing.product),
                ("version", req.version, existing.version),
            )
            if new != old
        ]
        if differing:
            raise Conflict(
                f"ticket {req.id!r} already exists with a different {', '.join(differing)}",
                field="id",
                value=req.id,
            )
        rows = self._event_rows(session, existing.id)
        state = self._evaluate(existing, rows, now)
        replay = store.replay_sorted(rows)
        return {
            **ticket_view(existing),
            "events": [event_view(r) for r in replay],
            "sla": state.to_json(),
            "created": False,
        }

    def _find(
        self, session: Session, ticket_id: str, *, lock: bool = False, missing_ok: bool = False
    ) -> Ticket:
        ticket = store.find_ticket(session, ticket_id, lock=lock)
        if ticket is None and not missing_ok:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        return ticket  # type: ignore[return-value]

    @staticmethod
    def _event_rows(session: Session, ticket_id: str) -> list[store.StoredEvent]:
        return store.event_rows(session, ticket_id)

    def _evaluate(self, ticket: Ticket, rows: Sequence[LogRow], at: datetime) -> TicketState:
        return evaluate(
            ticket.id,
            ticket.policy,
            ticket.created_at,
            [clock_event(r) for r in rows],
            self.config.policies,
            at,
            calendars=self.calendars,
        )

    def _refresh(
        self,
        session: Session,
        ticket: Ticket,
        now: datetime,
        rows: Sequence[LogRow] | None = None,
    ) -> TicketState:
        """Replay the log (`rows` when the caller holds it), store the derived ticket fields
        and the metric rows that changed, run on_state."""
        if rows is None:
            rows = self._event_rows(session, ticket.id)
        state = self._evaluate(ticket, rows, now)
        if ticket.status != state.status:
            ticket.status = state.status
        if ticket.current_policy != state.policy:
            ticket.current_policy = state.policy
        store.store_metrics(session, ticket.id, state, now)
        session.flush()
        for hook in self.hooks:
            hook.on_state(session, ticket, state, now)
        return state

    @staticmethod
    def _event_answer(
        ticket: Ticket, row: LogRow, state: TicketState, *, duplicate: bool
    ) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "event": event_view(row),
            "duplicate": duplicate,
            "ticket": ticket_view(ticket),
            "sla": state.to_json(),
        }
