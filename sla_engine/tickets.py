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

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.clock import Event, TicketState, evaluate
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

_EVENT_COLUMNS = (
    TicketEvent.seq,
    TicketEvent.event_id,
    TicketEvent.type,
    TicketEvent.occurred_at,
    TicketEvent.data,
    TicketEvent.received_at,
)
METRIC_FIELDS = (  # the columns of a metric row the clock derives
    "cycle",
    "status",
    "policy",
    "calendar",
    "started_at",
    "target_at",
    "breach_at",
    "stopped_at",
    "business_elapsed_s",
)
METRICS_TABLE = cast(Table, TicketMetric.__table__)
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def metric_values(state: TicketState) -> dict[str, dict[str, Any]]:
    """The `ticket_metrics` columns (but `updated_at`) each metric of `state` stores."""
    return {
        name: {
            "cycle": metric.cycle,
            "status": metric.status,
            "policy": state.policy,
            "calendar": metric.calendar,
            "started_at": metric.started_at,
            "target_at": metric.target_at,
            "breach_at": metric.breach_at,
            "stopped_at": metric.stopped_at,
            "business_elapsed_s": float(metric.business_elapsed_s),
        }
        for name, metric in state.metrics.items()
    }


def is_transient(exc: Exception) -> bool:
    """A conflict between concurrent transactions that a retry of the request resolves."""
    if isinstance(exc, IntegrityError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def event_view(row: LogRow) -> dict[str, Any]:
    return {
        **row.data,
        "event_id": row.event_id,
        "type": row.type,
        "occurred_at": _iso(row.occurred_at),
        "seq": row.seq,
        "received_at": _iso(row.received_at),
    }


def clock_event(row: LogRow) -> Event:
    return Event(
        event_id=row.event_id,
        type=row.type,
        occurred_at=row.occurred_at,
        seq=row.seq,
        data=dict(row.data),
    )


# --- the service ---------------------------------------------------------------------------


def _load_calendar(name: str) -> Any:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


class RecentCalendars:
    """`load_calendar` remembered for `ttl` seconds.

    The loader looks the file up and checks its mtime on every call; a ticket write needs
    the same one or two calendars each time, so they are re-checked at most once per `ttl`.
    """

    def __init__(self, loader: Callable[[str], Any] = _load_calendar, ttl: float = 1.0) -> None:
        self.loader = loader
        self.ttl = ttl
        self._seen: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        now = time.monotonic()
        seen = self._seen.get(name)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        calendar = self.loader(name)
        with self._lock:
            self._seen[name] = (now, calendar)
        return calendar


_TICKET_BY_ID = select(Ticket).where(Ticket.id == bindparam("ticket_id"))
_TICKET_LOCKED = _TICKET_BY_ID.with_for_update().execution_options(populate_existing=True)
_EVENTS_OF_TICKET = (
    select(*_EVENT_COLUMNS)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"))
    .order_by(TicketEvent.seq)
)
EVENTS_TABLE = cast(Table, TicketEvent.__table__)
_INSERT_EVENT = EVENTS_TABLE.insert().returning(EVENTS_TABLE.c.seq)
_METRICS_OF_TICKET = select(
    METRICS_TABLE.c.metric, *(METRICS_TABLE.c[name] for name in METRIC_FIELDS)
).where(METRICS_TABLE.c.ticket_id == bindparam("ticket_id"))
_UPDATE_METRIC = update(METRICS_TABLE).where(
    METRICS_TABLE.c.ticket_id == bindparam("b_ticket_id"),
    METRICS_TABLE.c.metric == bindparam("b_metric"),
)


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
        data = dict(req.data)
        seq = session.execute(
            _INSERT_EVENT,
            {
                "ticket_id": ticket.id,
                "event_id": req.event_id,
                "type": req.type,
                "occurred_at": req.occurred_at,
                "data": data,
                "received_at": now,
            },
        ).scalar_one()
        row = StoredEvent(seq, req.event_id, req.type, req.occurred_at, data, now)
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
        query = _TICKET_LOCKED if lock else _TICKET_BY_ID
        ticket = session.scalar(query, {"ticket_id": ticket_id})
        if ticket is None and not missing_ok:
            raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
        return ticket  # type: ignore[return-value]

    @staticmethod
    def _event_rows(session: Session, ticket_id: str) -> list[StoredEvent]:
        """The ticket's log in arrival order, as plain values (one query, no ORM objects)."""
        rows = session.execute(_EVENTS_OF_TICKET, {"ticket_id": ticket_id})
        return [StoredEvent(*r) for r in rows]

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
        self._store_metrics(session, ticket.id, state, now)
        session.flush()
        for hook in self.hooks:
            hook.on_state(session, ticket, state, now)
        return state

    @staticmethod
    def _store_metrics(session: Session, ticket_id: str, state: TicketState, now: datetime) -> None:
        """Write only what differs from the stored rows (`updated_at` marks the last change)."""
        table = METRICS_TABLE
        stored = {
            r.metric: r._mapping
            for r in session.execute(_METRICS_OF_TICKET, {"ticket_id": ticket_id})
        }
        wanted = metric_values(state)
        added = [
            {"ticket_id": ticket_id, "metric": name, **values, "updated_at": now}
            for name, values in wanted.items()
            if name not in stored
        ]
        changed = [
            {"b_ticket_id": ticket_id, "b_metric": name, **values, "updated_at": now}
            for name, values in wanted.items()
            if name in stored and any(stored[name][k] != v for k, v in values.items())
        ]
        gone = [name for name in stored if name not in wanted]
        if added:
            session.execute(insert(table), added)
        if changed:
            session.execute(_UPDATE_METRIC, changed)
        if gone:
            session.execute(
                delete(table).where(table.c.ticket_id == ticket_id, table.c.metric.in_(gone))
            )

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
