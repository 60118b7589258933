"""TicketService: tickets and their event logs, one transaction per request.

Each write locks the ticket row, appends to the log, replays the whole log through the pure
clock and stores each metric's current cycle, so events may arrive late, out of order or
twice and the stored answer is the same. Hooks (credits, escalation timers, products) run
inside the same transaction: one that raises rolls the whole request back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.clock import Event, TicketState, evaluate
from sla_engine.config import ServiceConfig
from sla_engine.errors import Conflict, InputError, NotFound
from sla_engine.storage.models import ID_LENGTH, Ticket, TicketEvent, TicketMetric

CLOCK_EVENT_TYPES = frozenset(
    {
        "created",
        "agent_reply",
        "customer_reply",
        "pending",
        "open",
        "solved",
        "closed",
        "reopened",
        "policy_changed",
    }
)
CREDIT_EVENT_TYPES = frozenset(
    {"verified_bug", "split", "not_an_emergency", "rsaa_granted", "rsaa_revoked"}
)
EVENT_TYPES = CLOCK_EVENT_TYPES | CREDIT_EVENT_TYPES
RESERVED_EVENT_KEYS = frozenset(
    {"event_id", "type", "occurred_at", "seq", "received_at", "ticket_id"}
)
MAX_EVENT_DATA_BYTES = 64 * 1024
NAME_MAX = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TicketCreate:
    """A request to open a ticket (SPEC `POST /v1/tickets`)."""

    id: str
    policy: str
    created_at: datetime
    account: str | None = None
    product: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class EventCreate:
    """A request to append an event; `data` holds the event's extra fields."""

    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


class TicketHook(Protocol):
    """Another part's reaction to ticket writes; everything runs in the request's transaction."""

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None: ...

    def on_event(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None: ...

    def on_state(
        self, session: Session, ticket: Ticket, state: TicketState, now: datetime
    ) -> None: ...


# --- validation (pure) -------------------------------------------------------------------


def check_identifier(value: Any, field_name: str, *, max_length: int = ID_LENGTH) -> str:
    """An id usable in a URL path: 1..max_length printable characters, no '/', no padding."""
    if not isinstance(value, str):
        raise InputError(f"{field_name} must be a string", field=field_name, value=value)
    if not 1 <= len(value) <= max_length:
        raise InputError(
            f"{field_name} must be 1 to {max_length} characters long", field=field_name, value=value
        )
    if value != value.strip() or "/" in value or not value.isprintable():
        raise InputError(
            f"{field_name} must be printable, without '/' or surrounding spaces",
            field=field_name,
            value=value,
        )
    return value


def check_optional_identifier(value: Any, field_name: str, *, max_length: int) -> str | None:
    return None if value is None else check_identifier(value, field_name, max_length=max_length)


def check_aware(value: Any, field_name: str) -> datetime:
    """An instant: a datetime with a UTC offset (naive local times are ambiguous)."""
    if not isinstance(value, datetime):
        raise InputError(f"{field_name} must be a datetime", field=field_name, value=value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"{field_name} must carry a UTC offset (e.g. 2026-11-26T09:00:00-07:00)",
            field=field_name,
            value=value.isoformat(),
        )
    return value


def check_policy(name: Any, policies: Mapping[str, Any], field_name: str = "policy") -> str:
    if not isinstance(name, str) or name not in policies:
        known = ", ".join(sorted(policies))
        raise InputError(
            f"{field_name} {name!r} is not a configured policy (known: {known})",
            field=field_name,
            value=name,
        )
    return name


def check_ticket_request(req: TicketCreate, policies: Mapping[str, Any]) -> None:
    check_identifier(req.id, "id")
    check_policy(req.policy, policies)
    check_aware(req.created_at, "created_at")
    check_optional_identifier(req.account, "account", max_length=ID_LENGTH)
    check_optional_identifier(req.product, "product", max_length=NAME_MAX)
    check_optional_identifier(req.version, "version", max_length=NAME_MAX)


def check_event_request(req: EventCreate, policies: Mapping[str, Any]) -> None:
    check_identifier(req.event_id, "event_id")
    if req.type not in EVENT_TYPES:
        raise InputError(
            f"type {req.type!r} is not an event type (one of: {', '.join(sorted(EVENT_TYPES))})",
            field="type",
            value=req.type,
        )
    check_aware(req.occurred_at, "occurred_at")
    check_event_data(req.data)
    if req.type == "policy_changed":
        check_policy(req.data.get("policy"), policies)


def check_event_data(data: Any) -> None:
    if not isinstance(data, Mapping):
        raise InputError("event fields must be a JSON object", field="data", value=data)
    for key in data:
        if not isinstance(key, str):
            raise InputError("event field names must be strings", field="data", value=key)
        if key in RESERVED_EVENT_KEYS:
            raise InputError(f"{key} cannot be an extra event field", field=key, value=data[key])
    try:
        encoded = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"event fields must be plain JSON values ({exc})", field="data", value=repr(data)
        ) from None
    if len(encoded.encode()) > MAX_EVENT_DATA_BYTES:
        raise InputError(
            f"event fields exceed {MAX_EVENT_DATA_BYTES} bytes of JSON",
            field="data",
            value=f"{len(encoded)} bytes",
        )


# --- views (plain JSON-ready dicts) --------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "policy": ticket.policy,
        "current_policy": ticket.current_policy,
        "status": ticket.status,
        "created_at": _iso(ticket.created_at),
        "account": ticket.account,
        "product": ticket.product,
        "version": ticket.version,
        "legacy": ticket.legacy,
        "received_at": _iso(ticket.received_at),
    }


def event_view(row: TicketEvent) -> dict[str, Any]:
    return {
        **row.data,
        "event_id": row.event_id,
        "type": row.type,
        "occurred_at": _iso(row.occurred_at),
        "seq": row.seq,
        "received_at": _iso(row.received_at),
    }


def clock_event(row: TicketEvent) -> Event:
    return Event(
        event_id=row.event_id,
        type=row.type,
        occurred_at=row.occurred_at,
        seq=row.seq,
        data=dict(row.data),
    )


# --- the service ---------------------------------------------------------------------------


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
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            return self.add_event_in_session(session, ticket_id, req, now)

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket's fields, its events in replay order and its SLA state now."""
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            ticket = self._find(session, ticket_id)
            rows = self._event_rows(session, ticket.id)
            state = self._evaluate(ticket, rows, now)
            replay = sorted(rows, key=lambda r: (r.occurred_at, r.seq))
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
        state = self._refresh(session, ticket, now)
        return {**ticket_view(ticket), "events": [], "sla": state.to_json(), "created": True}

    def add_event_in_session(
        self, session: Session, ticket_id: str, req: EventCreate, now: datetime
    ) -> dict[str, Any]:
        """Append an event inside `session`'s transaction, holding the ticket row's lock."""
        check_event_request(req, self.config.policies)
        ticket = self._find(session, ticket_id, lock=True)
        stored = session.scalar(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.event_id == req.event_id
            )
        )
        if stored is not None:
            state = self._evaluate(ticket, self._event_rows(session, ticket.id), now)
            return self._event_answer(ticket, stored, state, duplicate=True)
        if req.occurred_at < ticket.created_at:
            raise InputError(
                f"occurred_at {req.occurred_at.isoformat()} is before the ticket's created_at "
                f"{ticket.created_at.isoformat()}",
                field="occurred_at",
                value=req.occurred_at.isoformat(),
            )
        row = TicketEvent(
            ticket_id=ticket.id,
            event_id=req.event_id,
            type=req.type,
            occurred_at=req.occurred_at,
            data=dict(req.data),
            received_at=now,
        )
        session.add(row)
        session.flush()
        event = clock_event(row)
        for hook in self.hooks:
            hook.on_event(session, ticket, event, now)
        state = self._refresh(session, ticket, now)
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
        replay = sorted(rows, key=lambda r: (r.occurred_at, r.seq))
        return {
            **ticket_view(existing),
            "events": [event_view(r) for r in replay],
            "sla": state.to_json(),
            "created": False,
        }

    def _find(
        self, session: Session, ticket_id: str, *, lock: bool = False, missing_ok: bool = False
    ) -> Ticket:
        query = select(Ticket).where(Ticket.id == ticket_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        ticket = session.scalar(query)
        if ticket is None and not missing_ok:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        return ticket  # type: ignore[return-value]

    @staticmethod
    def _event_rows(session: Session, ticket_id: str) -> list[TicketEvent]:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        return list(session.scalars(query.order_by(TicketEvent.seq)))

    def _evaluate(self, ticket: Ticket, rows: Sequence[TicketEvent], at: datetime) -> TicketState:
        return evaluate(
            ticket.id,
            ticket.policy,
            ticket.created_at,
            [clock_event(r) for r in rows],
            self.config.policies,
            at,
        )

    def _refresh(self, session: Session, ticket: Ticket, now: datetime) -> TicketState:
        """Replay the log, store the derived ticket fields and metric rows, run on_state."""
        rows = self._event_rows(session, ticket.id)
        state = self._evaluate(ticket, rows, now)
        ticket.status = state.status
        ticket.current_policy = state.policy
        self._store_metrics(session, ticket.id, state, now)
        session.flush()
        for hook in self.hooks:
            hook.on_state(session, ticket, state, now)
        return state

    @staticmethod
    def _store_metrics(session: Session, ticket_id: str, state: TicketState, now: datetime) -> None:
        stored = {
            m.metric: m
            for m in session.scalars(
                select(TicketMetric).where(TicketMetric.ticket_id == ticket_id)
            )
        }
        for name, metric in state.metrics.items():
            row = stored.get(name) or TicketMetric(ticket_id=ticket_id, metric=name)
            row.cycle = metric.cycle
            row.status = metric.status
            row.policy = state.policy
            row.calendar = metric.calendar
            row.started_at = metric.started_at
            row.target_at = metric.target_at
            row.breach_at = metric.breach_at
            row.stopped_at = metric.stopped_at
            row.business_elapsed_s = float(metric.business_elapsed_s)
            row.updated_at = now
            if name not in stored:
                session.add(row)
        for name in set(stored) - set(state.metrics):
            session.delete(stored[name])

    @staticmethod
    def _event_answer(
        ticket: Ticket, row: TicketEvent, state: TicketState, *, duplicate: bool
    ) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "event": event_view(row),
            "duplicate": duplicate,
            "ticket": ticket_view(ticket),
            "sla": state.to_json(),
        }
