"""The saved clock through TicketService equals the whole-log replay, on both databases.

Random logs are posted in a random arrival order (so most orders have late events), with
repeated event ids, pauses, policy and calendar changes, and calendar versions added between
posts. After every post the service's answer, its stored metric rows, its saved clock and every
checkpoint must be what replaying the whole log (or the log up to the checkpoint) gives.
Checkpoints are taken every 3 events here so that late events replay from them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig, load_config
from sla_engine.core.calendar import Calendar, load_calendar
from sla_engine.core.clock import TicketState, replay_order
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.storage.models import Ticket, TicketCheckpoint, TicketMetric
from sla_engine.tickets import (
    METRIC_FIELDS,
    EventCreate,
    TicketCreate,
    TicketService,
    metric_rows,
    store,
)
from sla_engine.tickets.metric_rows import metric_values
from sla_engine.tickets.store import StoredEvent, clock_event
from tests.unit.test_ticket_calendar import TEAM_HOURS, write_team_calendars

T0 = datetime(2026, 11, 23, 7, tzinfo=UTC)  # Monday 08:00 in Berlin
M = timedelta(minutes=1)
POLICIES_TOML = """
[policies.standard.next_response]
calendar = "24x7"
breach = "2h"

[policies.standard.resolution]
calendar = "smartertools"
breach = "8h"
target = "6h"
pausable = true

[policies.from_start.first_response]
calendar = "24x7"
breach = "2h"
retarget = "from_start"
fixed_calendar = true

[policies.from_start.resolution]
calendar = "24x7"
breach = "4h"
retarget = "from_start"
pausable = true
"""
TYPES = [
    "agent_reply",
    "customer_reply",
    "pending",
    "open",
    "solved",
    "reopened",
    "policy_changed",
    "calendar_changed",
    "closed",
    "not_an_emergency",
]


class VersionedSource:
    """A `CalendarSource` whose calendars tests replace, bumping the revision."""

    def __init__(self, calendars: dict[str, Calendar]) -> None:
        self.calendars = dict(calendars)
        self.revisions = dict.fromkeys(calendars, 1)

    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        return self.calendars[name]

    def revision(self, name: str) -> int:
        return self.revisions[name]

    def replace(self, name: str, calendar: Calendar) -> None:
        self.calendars[name] = calendar
        self.revisions[name] += 1


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    service: TicketService
    maker: sessionmaker[Session]
    source: VersionedSource
    clock: Clock
    folder: Path
    ids: Iterator[int] = field(default_factory=itertools.count)


def config_for(url: str, tmp_path: Path) -> ServiceConfig:
    path = tmp_path / "sla-engine.toml"
    path.write_text(POLICIES_TOML)
    return load_config(path, env={}, database_url=url)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    upgrade(db_url)
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    write_team_calendars(tmp_path)
    calendars = {name: load_calendar(tmp_path / f"{name}.toml") for name in ("berlin", "sydney")}
    calendars.update({name: load_calendar(name) for name in ("24x7", "smartertools")})
    source = VersionedSource(calendars)
    clock = Clock()
    service = TicketService(maker, config_for(db_url, tmp_path), clock=clock, calendars=source)
    service.clocks.every = 3
    yield World(service, maker, source, clock, tmp_path)
    engine.dispose()


def other_hours(folder: Path, name: str, version: int) -> Calendar:
    """NAME's hours moved by `version` hours (a new version of the calendar)."""
    path = folder / f"{name}-v{version}.toml"
    zone = {"berlin": "Europe/Berlin", "sydney": "Australia/Sydney"}[name]
    text = TEAM_HOURS.format(name=name, zone=zone).replace(
        "09:00-17:00", f"{7 + version % 4:02d}:00-17:00"
    )
    path.write_text(text)
    return load_calendar(path)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 12))
    events = []
    for i in range(count):
        kind = draw(st.sampled_from(TYPES))
        data: dict[str, Any] = {}
        if kind == "policy_changed":
            data["policy"] = draw(st.sampled_from(["standard", "emergency", "from_start"]))
        elif kind == "calendar_changed":
            data["calendar"] = draw(st.sampled_from(["berlin", "sydney", "smartertools", None]))
        minute = draw(st.integers(0, 4 * 24 * 60))
        events.append(EventCreate(f"e{i}", kind, T0 + minute * M, data))
    in_order = draw(st.booleans())
    if in_order:
        posts = sorted(events, key=lambda e: e.occurred_at)
    else:
        posts = list(draw(st.permutations(events)))
    repeats = draw(st.lists(st.sampled_from(events), max_size=3))
    for repeat in repeats:
        posts.insert(draw(st.integers(0, len(posts))), repeat)
    return {
        "policy": draw(st.sampled_from(["standard", "emergency", "from_start"])),
        "calendar": draw(st.sampled_from([None, "berlin", "sydney"])),
        "posts": posts,
        "now": [T0 + draw(st.integers(0, 5 * 24 * 60)) * M for _ in posts],
        "bumps": [
            draw(st.sampled_from([None, None, None, "berlin", "sydney", "24x7"])) for _ in posts
        ],
    }


def reference(world: World, ticket_id: str, at: datetime) -> TicketState:
    with world.maker() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return world.service.evaluate_log(ticket, store.event_rows(session, ticket_id), at)


def check_saved(world: World, ticket_id: str, at: datetime) -> None:
    """The saved clock, the checkpoints and the metric rows against the whole log."""
    service = world.service
    with world.maker() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        rows = store.event_rows(session, ticket_id)
        whole = service.clocks.replay_rows(ticket, rows)
        saved = dict(ticket.clock_state or {})
        saved_rows = saved.pop("rows")
        assert saved == service.clocks.to_json(whole)
        ordered = sorted(rows, key=lambda r: (r.occurred_at, r.seq))
        for checkpoint in session.scalars(
            select(TicketCheckpoint).where(TicketCheckpoint.ticket_id == ticket_id)
        ):
            upto: list[StoredEvent] = [
                r
                for r in ordered
                if (r.occurred_at, r.seq) <= (checkpoint.occurred_at, checkpoint.seq)
            ]
            assert (upto[-1].occurred_at, upto[-1].seq) == (checkpoint.occurred_at, checkpoint.seq)
            assert len(upto) % service.clocks.every == 0
            assert checkpoint.state == service.clocks.to_json(
                service.clocks.replay_rows(ticket, upto)
            )
        stored = {
            m.metric: {k: getattr(m, k) for k in METRIC_FIELDS}
            for m in session.scalars(
                select(TicketMetric).where(TicketMetric.ticket_id == ticket_id)
            )
        }
    expected = metric_values(reference(world, ticket_id, at))
    assert stored == expected
    assert saved_rows == metric_rows.encoded_metric_rows(expected)
    assert ticket.calendar == reference(world, ticket_id, at).calendar


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios())
def test_saved_clock_equals_whole_replay(world: World, scenario: dict[str, Any]) -> None:
    ticket_id = f"P-{next(world.ids)}"
    world.clock.now = T0
    world.service.create_ticket(
        TicketCreate(ticket_id, scenario["policy"], T0, calendar=scenario["calendar"])
    )
    for post, now, bump in zip(scenario["posts"], scenario["now"], scenario["bumps"], strict=True):
        if bump is not None:
            version = world.source.revisions[bump] + 1
            replacement = (
                load_calendar("smartertools")
                if bump == "24x7" and version % 2
                else load_calendar("24x7")
                if bump == "24x7"
                else other_hours(world.folder, bump, version)
            )
            world.source.replace(bump, replacement)
        world.clock.now = now
        answer = world.service.add_event(ticket_id, post)
        expected = reference(world, ticket_id, now)
        assert answer["sla"] == expected.to_json()
        assert answer["ticket"]["calendar"] == expected.calendar
        assert world.service.sla(ticket_id) == expected
        if not answer["duplicate"]:  # a repeated event_id writes nothing
            check_saved(world, ticket_id, now)


def test_whole_log_is_not_read_for_an_event_in_order(world: World) -> None:
    """The in-order path reads nothing of the log nor of the metric rows (statements
    counted)."""
    from sqlalchemy import event as sa_event

    world.service.create_ticket(TicketCreate("Q-1", "standard", T0))
    for i in range(4):  # the 5th event is not one that takes a checkpoint (every 3)
        world.clock.now = T0 + i * M
        world.service.add_event("Q-1", EventCreate(f"e{i}", "customer_reply", T0 + i * M))
    seen: list[str] = []
    engine = world.maker.kw["bind"]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    world.clock.now = T0 + 10 * M
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        world.service.add_event("Q-1", EventCreate("e9", "agent_reply", T0 + 9 * M))
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert all("ticket_events" not in s and "ticket_metrics" not in s for s in reads)
    # BEGIN (SQLite), the ticket, the event, the changed metric rows, the ticket again
    assert len(seen) <= 5, "\n".join(s[:70] for s in seen)


def test_refresh_replays_with_the_new_calendar_and_is_idempotent(world: World) -> None:
    world.service.create_ticket(TicketCreate("R-1", "standard", T0, calendar="berlin"))
    before = world.service.sla("R-1")
    world.source.replace("berlin", other_hours(world.folder, "berlin", 1))  # 08:00-17:00
    first = world.service.refresh("R-1")
    assert first != before
    assert first.metrics["first_response"].business_elapsed_s == 0.0
    assert first == reference(world, "R-1", world.clock.now)
    assert world.service.refresh("R-1") == first
    check_saved(world, "R-1", world.clock.now)


def test_event_log_replay_covers_legacy_tickets_without_saved_state(world: World) -> None:
    """A ticket written before migration 0005 (no saved clock) is replayed once, then saved."""
    world.service.create_ticket(TicketCreate("L-1", "standard", T0))
    world.service.add_event("L-1", EventCreate("e1", "pending", T0 + M))
    with world.maker() as session, session.begin():
        ticket = session.get(Ticket, "L-1")
        assert ticket is not None
        ticket.clock_state = None
    world.service.add_event("L-1", EventCreate("e2", "open", T0 + 2 * M))
    check_saved(world, "L-1", world.clock.now)


def test_rows_and_clock_event_agree() -> None:
    row = StoredEvent(3, "e", "pending", T0, {"x": 1}, T0)
    assert clock_event(row).seq == 3 and replay_order([clock_event(row)])[0].event_id == "e"


def test_refresh_many_equals_refresh_one_by_one(world: World) -> None:
    ids = [f"M-{n}" for n in range(6)]
    for n, ticket_id in enumerate(ids):
        world.clock.now = T0
        calendar = [None, "berlin", "sydney"][n % 3]
        world.service.create_ticket(TicketCreate(ticket_id, "standard", T0, calendar=calendar))
        for i in range(n * 2):
            kind = ["customer_reply", "agent_reply", "pending", "open"][i % 4]
            world.service.add_event(ticket_id, EventCreate(f"e{i}", kind, T0 + (i * 37) * M))
    world.service.add_event("M-5", EventCreate("future", "pending", T0 + 10_000 * M))
    world.clock.now = T0 + 600 * M
    world.source.replace("berlin", other_hours(world.folder, "berlin", 3))
    world.source.replace("sydney", other_hours(world.folder, "sydney", 2))
    with world.maker.begin() as session:
        states = world.service.refresh_many_in_session(session, [*ids, "nope"], world.clock.now)
    assert sorted(states) == ids
    for ticket_id in ids:
        assert states[ticket_id] == reference(world, ticket_id, world.clock.now)
        check_saved(world, ticket_id, world.clock.now)
    with world.maker.begin() as session:
        again = world.service.refresh_many_in_session(session, ids, world.clock.now)
    assert again == states
