"""TicketService over a real database (SQLite and PostgreSQL): writes, replays, hooks, races."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sla_engine.composition import build_services
from sla_engine.config import ServiceConfig, load_config
from sla_engine.errors import Conflict, InputError, NotFound, PaymentRequired
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.storage.models import Ticket, TicketEvent, TicketMetric
from sla_engine.tickets import METRIC_FIELDS, EventCreate, TicketCreate, TicketService

T0 = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Phoenix
NOW = T0 + timedelta(hours=2)

POLICIES_TOML = """
[policies.standard.next_response]
calendar = "24x7"
breach = "2h"

[policies.standard.resolution]
calendar = "24x7"
breach = "8h"
pausable = true
"""


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    service: TicketService
    maker: Any
    clock: FixedClock

    def count(self, model: Any) -> int:
        with self.maker() as session:
            return int(session.scalar(select(func.count()).select_from(model)))

    def metric_rows(self, ticket_id: str) -> dict[str, dict[str, Any]]:
        with self.maker() as session:
            rows = session.scalars(select(TicketMetric).where(TicketMetric.ticket_id == ticket_id))
            return {r.metric: {k: getattr(r, k) for k in METRIC_FIELDS} for r in rows}


def config_for(url: str, tmp_path: Path) -> ServiceConfig:
    path = tmp_path / "sla-engine.toml"
    path.write_text(POLICIES_TOML)
    return load_config(path, env={}, database_url=url)


def open_world(url: str, tmp_path: Path) -> Iterator[World]:
    upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    clock = FixedClock(NOW)
    yield World(TicketService(maker, config_for(url, tmp_path), clock=clock), maker, clock)
    engine.dispose()


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    yield from open_world(db_url, tmp_path)


@pytest.fixture
def sqlite_world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    """For checks made before any database access: one database is enough."""
    yield from open_world(sqlite_url, tmp_path)


def emergency(ticket_id: str = "T-1", **fields: Any) -> TicketCreate:
    return TicketCreate(id=ticket_id, policy="emergency", created_at=T0, **fields)


def event(event_id: str, type_: str, minutes: float, **data: Any) -> EventCreate:
    return EventCreate(event_id, type_, T0 + timedelta(minutes=minutes), data)


# --- creating tickets ----------------------------------------------------------------------


def test_create_ticket_stores_it_and_its_metric_rows(world: World) -> None:
    world.clock.now = T0 + timedelta(minutes=10)
    answer = world.service.create_ticket(emergency(account="acme", product="SmarterMail"))
    assert answer["created"] is True
    assert answer["id"] == "T-1" and answer["status"] == "open"
    assert answer["policy"] == answer["current_policy"] == "emergency"
    first = answer["sla"]["metrics"]["first_response"]
    assert first["status"] == "active"
    assert datetime.fromisoformat(first["breach_at"]) == T0 + timedelta(hours=1)
    rows = world.metric_rows("T-1")
    assert rows["first_response"]["status"] == "active"
    assert rows["first_response"]["breach_at"] == T0 + timedelta(hours=1)
    assert rows["first_response"]["calendar"] == "24x7"
    assert rows["first_response"]["business_elapsed_s"] == pytest.approx(600.0)


def test_creating_the_same_ticket_again_is_idempotent(world: World) -> None:
    world.service.create_ticket(emergency(account="acme"))
    again = world.service.create_ticket(
        TicketCreate(
            id="T-1",
            policy="emergency",
            created_at=T0.astimezone(timezone(timedelta(hours=-7))),
            account="acme",
        )
    )
    assert again["created"] is False and again["id"] == "T-1"
    assert world.count(Ticket) == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"policy": "standard"},
        {"created_at": T0 + timedelta(seconds=1)},
        {"account": "other"},
        {"product": "SmarterMail"},
    ],
)
def test_reusing_a_ticket_id_with_other_fields_is_a_conflict(
    world: World, changed: dict[str, Any]
) -> None:
    world.service.create_ticket(emergency(account="acme"))
    fields: dict[str, Any] = {"policy": "emergency", "created_at": T0, "account": "acme"}
    fields.update(changed)
    with pytest.raises(Conflict) as caught:
        world.service.create_ticket(TicketCreate(id="T-1", **fields))
    assert caught.value.field == "id" and caught.value.value == "T-1"
    with world.maker() as session:
        stored = session.get_one(Ticket, "T-1")
        assert (stored.policy, stored.account, stored.created_at) == ("emergency", "acme", T0)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (TicketCreate(id="", policy="standard", created_at=T0), "id"),
        (TicketCreate(id="x" * 201, policy="standard", created_at=T0), "id"),
        (TicketCreate(id="a/b", policy="standard", created_at=T0), "id"),
        (TicketCreate(id="T-1", policy="platinum", created_at=T0), "policy"),
        (TicketCreate(id="T-1", policy="standard", created_at=datetime(2026, 1, 1)), "created_at"),
        (TicketCreate(id="T-1", policy="standard", created_at=T0, account=""), "account"),
    ],
)
def test_bad_ticket_requests_name_the_field_and_store_nothing(
    sqlite_world: World, request_: TicketCreate, field: str
) -> None:
    world = sqlite_world
    with pytest.raises(InputError) as caught:
        world.service.create_ticket(request_)
    assert caught.value.field == field
    assert world.count(Ticket) == 0


# --- events --------------------------------------------------------------------------------


def test_agent_reply_achieves_the_first_response(world: World) -> None:
    world.service.create_ticket(emergency())
    answer = world.service.add_event("T-1", event("e1", "agent_reply", 30))
    assert answer["duplicate"] is False
    assert answer["event"]["event_id"] == "e1" and answer["event"]["type"] == "agent_reply"
    assert answer["sla"]["metrics"]["first_response"]["status"] == "achieved"
    row = world.metric_rows("T-1")["first_response"]
    assert row["status"] == "achieved"
    assert row["stopped_at"] == T0 + timedelta(minutes=30)
    assert row["business_elapsed_s"] == pytest.approx(1800.0)


def test_a_late_reply_counts_at_its_occurred_at(world: World) -> None:
    world.service.create_ticket(emergency())
    world.clock.now = T0 + timedelta(hours=3)
    assert world.service.sla("T-1").metrics["first_response"].status == "breached"
    world.service.add_event("T-1", event("e1", "agent_reply", 59))
    assert world.metric_rows("T-1")["first_response"]["status"] == "achieved"


def test_a_repeated_event_id_is_a_no_op(world: World) -> None:
    world.service.create_ticket(emergency())
    first = world.service.add_event("T-1", event("e1", "agent_reply", 30))
    again = world.service.add_event("T-1", event("e1", "customer_reply", 45, note="retry"))
    assert again["duplicate"] is True
    assert again["event"] == first["event"]
    assert again["sla"] == first["sla"]
    assert world.count(TicketEvent) == 1


def test_unknown_ticket_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        world.service.add_event("nope", event("e1", "agent_reply", 1))
    assert caught.value.value == "nope"
    with pytest.raises(NotFound):
        world.service.get_ticket("nope")
    with pytest.raises(NotFound):
        world.service.sla("nope")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (event("e1", "telepathy", 1), "type"),
        (event("", "agent_reply", 1), "event_id"),
        (EventCreate("e1", "agent_reply", datetime(2026, 11, 24, 9)), "occurred_at"),
        (event("e1", "agent_reply", -1), "occurred_at"),
        (event("e1", "policy_changed", 1), "policy"),
        (event("e1", "policy_changed", 1, policy="platinum"), "policy"),
        (event("e1", "agent_reply", 1, seq=3), "seq"),
        (event("e1", "agent_reply", 1, blob=object()), "data"),
    ],
)
def test_bad_events_name_the_field_and_store_nothing(
    sqlite_world: World, request_: EventCreate, field: str
) -> None:
    world = sqlite_world
    world.service.create_ticket(emergency())
    before = world.metric_rows("T-1")
    with pytest.raises(InputError) as caught:
        world.service.add_event("T-1", request_)
    assert caught.value.field == field
    assert world.count(TicketEvent) == 0
    assert world.metric_rows("T-1") == before


def test_get_ticket_lists_events_in_replay_order_and_derives_status(world: World) -> None:
    world.service.create_ticket(emergency())
    world.service.add_event("T-1", event("solve", "solved", 90))
    world.service.add_event("T-1", event("reply", "agent_reply", 20, body="hi"))
    world.service.add_event("T-1", event("wait", "pending", 30))
    ticket = world.service.get_ticket("T-1")
    assert [e["event_id"] for e in ticket["events"]] == ["reply", "wait", "solve"]
    assert ticket["events"][0]["body"] == "hi"
    assert ticket["status"] == "solved"
    assert ticket["sla"]["metrics"]["first_response"]["status"] == "achieved"


def test_policy_changed_moves_the_current_policy(world: World) -> None:
    world.service.create_ticket(TicketCreate(id="T-1", policy="standard", created_at=T0))
    world.service.add_event("T-1", event("up", "policy_changed", 10, policy="emergency"))
    with world.maker() as session:
        assert session.get_one(Ticket, "T-1").current_policy == "emergency"
    assert world.service.sla("T-1").policy == "emergency"


def test_sla_at_an_instant(world: World) -> None:
    world.service.create_ticket(emergency())
    early = world.service.sla("T-1", at=T0 + timedelta(minutes=15))
    assert early.metrics["first_response"].business_elapsed_s == pytest.approx(900.0)
    late = world.service.sla("T-1", at=T0 + timedelta(hours=2))
    assert late.metrics["first_response"].status == "breached"
    with pytest.raises(InputError) as caught:
        world.service.sla("T-1", at=datetime(2026, 11, 24, 10))
    assert caught.value.field == "at"


# --- the log is the truth: arrival order does not matter -----------------------------------

LOG = [
    event("c1", "customer_reply", 5),
    event("a1", "agent_reply", 40),
    event("p1", "pending", 50),
    event("o1", "open", 170),
    event("c2", "customer_reply", 180),
    event("a2", "agent_reply", 200),
    event("s1", "solved", 400),
    event("r1", "reopened", 420),
]


def test_events_in_any_arrival_order_give_the_same_metric_rows(world: World) -> None:
    world.clock.now = T0 + timedelta(hours=9)
    orders = [LOG, list(reversed(LOG)), [LOG[i] for i in (3, 0, 7, 5, 1, 6, 2, 4)]]
    for n, order in enumerate(orders):
        world.service.create_ticket(TicketCreate(id=f"T-{n}", policy="standard", created_at=T0))
        for request_ in order:
            world.service.add_event(f"T-{n}", request_)
    stored = [world.metric_rows(f"T-{n}") for n in range(len(orders))]
    assert set(stored[0]) == {"first_response", "next_response", "resolution"}
    assert stored[1] == stored[0]
    assert stored[2] == stored[0]
    states = [world.service.sla(f"T-{n}").to_json() for n in range(len(orders))]
    assert all(s["metrics"] == states[0]["metrics"] for s in states)


# --- hooks ---------------------------------------------------------------------------------


class RefusingHook:
    """Refuses at one stage, after writing a row of its own (which must vanish too)."""

    def __init__(self, stage: str, error: Exception) -> None:
        self.stage, self.error = stage, error

    def _maybe_refuse(self, session: Session, stage: str, ticket: Ticket) -> None:
        if stage == self.stage:
            session.add(Ticket(**{**_ticket_fields(ticket), "id": f"{ticket.id}-shadow"}))
            session.flush()
            raise self.error

    def on_create(self, session: Session, ticket: Ticket, request: Any, now: datetime) -> None:
        self._maybe_refuse(session, "create", ticket)

    def on_event(self, session: Session, ticket: Ticket, event: Any, now: datetime) -> None:
        self._maybe_refuse(session, "event", ticket)

    def on_state(self, session: Session, ticket: Ticket, state: Any, now: datetime) -> None:
        if state.metrics["first_response"].status == "achieved" or self.stage == "state-create":
            self._maybe_refuse(session, self.stage, ticket)


def _ticket_fields(ticket: Ticket) -> dict[str, Any]:
    names = ("policy", "current_policy", "created_at", "status", "received_at")
    return {name: getattr(ticket, name) for name in names}


@pytest.mark.parametrize("stage", ["create", "state-create"])
def test_a_hook_refusing_a_ticket_leaves_nothing_behind(world: World, stage: str) -> None:
    world.service.add_hook(RefusingHook(stage, PaymentRequired("no credit left", field="account")))
    with pytest.raises(PaymentRequired):
        world.service.create_ticket(emergency(account="acme"))
    assert (world.count(Ticket), world.count(TicketMetric), world.count(TicketEvent)) == (0, 0, 0)


@pytest.mark.parametrize("stage", ["event", "state"])
def test_a_hook_refusing_an_event_leaves_nothing_behind(world: World, stage: str) -> None:
    world.service.create_ticket(emergency())
    before = world.metric_rows("T-1")
    world.service.add_hook(RefusingHook(stage, InputError("refused", field="type", value="x")))
    with pytest.raises(InputError):
        world.service.add_event("T-1", event("e1", "agent_reply", 30))
    assert world.count(TicketEvent) == 0
    assert world.count(Ticket) == 1
    assert world.metric_rows("T-1") == before


class SplittingHook:
    """Like the credits `split` event: opens the new ticket inside the same transaction."""

    def __init__(self, service: TicketService) -> None:
        self.service = service

    def on_create(self, session: Session, ticket: Ticket, request: Any, now: datetime) -> None:
        if request.account == "broke":
            raise PaymentRequired("no credit left", field="account", value="broke")

    def on_event(self, session: Session, ticket: Ticket, event: Any, now: datetime) -> None:
        if event.type == "split":
            new = TicketCreate(
                id=event.data["new_ticket_id"],
                policy="standard",
                created_at=event.occurred_at,
                account=event.data.get("account"),
            )
            self.service.create_in_session(session, new, now)

    def on_state(self, session: Session, ticket: Ticket, state: Any, now: datetime) -> None:
        pass


def test_a_hook_can_create_a_ticket_in_the_same_transaction(world: World) -> None:
    world.service.add_hook(SplittingHook(world.service))
    world.service.create_ticket(emergency())
    world.service.add_event("T-1", event("s1", "split", 20, new_ticket_id="T-2"))
    assert world.service.get_ticket("T-2")["created_at"] == (T0 + timedelta(minutes=20)).isoformat()
    assert "first_response" in world.metric_rows("T-2")

    with pytest.raises(PaymentRequired):
        world.service.add_event(
            "T-1", event("s2", "split", 25, new_ticket_id="T-3", account="broke")
        )
    with pytest.raises(NotFound):
        world.service.get_ticket("T-3")
    assert [e["event_id"] for e in world.service.get_ticket("T-1")["events"]] == ["s1"]


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_events_on_one_ticket_are_all_stored(world: World) -> None:
    world.clock.now = T0 + timedelta(hours=9)
    world.service.create_ticket(TicketCreate(id="T-1", policy="standard", created_at=T0))
    minutes = itertools.count(1)
    kinds = itertools.cycle(["customer_reply", "agent_reply", "pending", "open"])
    batches = [[event(f"w{w}-{i}", next(kinds), next(minutes)) for i in range(6)] for w in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def post(batch: list[EventCreate]) -> None:
        start.wait()
        try:
            for request_ in batch:
                world.service.add_event("T-1", request_)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert world.count(TicketEvent) == 36
    with world.maker() as session:
        seqs = session.scalars(select(TicketEvent.seq)).all()
    assert len(set(seqs)) == 36

    # The stored rows are those of the whole log, whichever write came last.
    reference_hook = RecordingHook()
    world.service.add_hook(reference_hook)
    world.service.add_event("T-1", event("w0-0", "customer_reply", 1))  # a duplicate: no write
    assert reference_hook.states == []
    state = world.service.sla("T-1")
    rows = world.metric_rows("T-1")
    for name, metric in state.metrics.items():
        assert rows[name]["status"] == metric.status
        assert rows[name]["cycle"] == metric.cycle
        assert rows[name]["breach_at"] == metric.breach_at
        assert rows[name]["business_elapsed_s"] == pytest.approx(metric.business_elapsed_s)


def test_concurrent_creates_of_one_ticket_make_one(world: World) -> None:
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        start.wait()
        try:
            answers.append(world.service.create_ticket(emergency()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(a["created"] for a in answers) == [False, False, False, True]
    assert world.count(Ticket) == 1


class RecordingHook:
    def __init__(self) -> None:
        self.states: list[Any] = []

    def on_create(self, session: Session, ticket: Ticket, request: Any, now: datetime) -> None:
        pass

    def on_event(self, session: Session, ticket: Ticket, event: Any, now: datetime) -> None:
        pass

    def on_state(self, session: Session, ticket: Ticket, state: Any, now: datetime) -> None:
        self.states.append(state)


# --- the composition root ------------------------------------------------------------------


def test_build_services_migrates_and_serves_tickets(sqlite_url: str) -> None:
    services = build_services(ServiceConfig(database_url=sqlite_url), clock=FixedClock(NOW))
    try:
        answer = services.tickets.create_ticket(emergency())
        assert answer["created"] is True
        assert services.tickets.sla("T-1").metrics["first_response"].status == "breached"
    finally:
        services.close()


# --- the write's statements on the driver's cursor -----------------------------------------


def test_driver_statements_read_and_write_what_sqlalchemy_does(world: World) -> None:
    """The ticket row, the event insert and the ticket update run on the driver's cursor:
    the values read back equal SQLAlchemy's own reading, and listeners see each statement."""
    from sqlalchemy import event as sa_event

    from sla_engine.tickets import store

    world.service.create_ticket(
        TicketCreate("D-1", "standard", T0, account="acme", product="p", version="1.0")
    )
    world.service.add_event("D-1", event("e1", "pending", 5, note="ü ✓"))
    engine = world.maker.kw["bind"]
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.lstrip().split()[0].upper())

    with world.maker() as session, session.begin():
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            loaded = store.find_ticket(session, "D-1", lock=True)
            row = store.insert_new_event(session, "D-1", "e2", "open", T0, {"n": [1.5]}, NOW)
            assert loaded is not None and row is not None
            loaded.ticket.status = "solved"
            store.save_ticket(session, loaded)
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
        table = store.TICKETS_TABLE
        expected = session.execute(select(table).where(table.c.id == "D-1")).mappings().one()
        assert loaded.stored == dict(expected)
        assert loaded.ticket.clock_state == expected["clock_state"]
        assert loaded.ticket.created_at == T0 and loaded.ticket.created_at.tzinfo is not None
        stored = store.find_event(session, "D-1", "e2")
        assert stored == row and stored.data == {"n": [1.5]}
        assert store.find_event(session, "D-1", "e1").data == {"note": "ü ✓"}  # type: ignore[union-attr]
    assert [s for s in seen if s != "BEGIN"] == ["SELECT", "INSERT", "UPDATE"]  # BEGIN: SQLite
    assert world.service.get_ticket("D-1")["status"] == "solved"


def test_driver_statement_errors_are_sqlalchemys(world: World) -> None:
    from sqlalchemy.exc import IntegrityError

    from sla_engine.tickets import store

    with world.maker() as session, session.begin():
        with pytest.raises(IntegrityError) as raised:  # no such ticket: the foreign key
            store.insert_new_event(session, "nobody", "e1", "open", T0, {}, NOW)
        assert raised.value.orig is not None
