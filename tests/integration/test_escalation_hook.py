"""Ticket writes plan, move and cancel escalation timers in the same transaction.

Real parts: TicketService, the SLA clock, the smartertools calendar, SQLite/PostgreSQL and a
receiver on 127.0.0.1. Time is injected: the ticket service and the engine read `now[0]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla_engine.config import load_config
from sla_engine.escalation import EscalationSettings, build_escalations
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.tickets import EventCreate, TicketCreate, TicketService
from tests.support.escalation_receiver import Receiver
from tests.support.server import serve_app

PHX = ZoneInfo("America/Phoenix")
MON_8 = datetime(2026, 11, 23, 8, 0, tzinfo=PHX)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

CONFIG = """
[[destinations]]
name = "oncall"
type = "webhook"
url = "{base}/hook"
secret = "{secret}"

[[destinations]]
name = "pd"
type = "pagerduty"
url = "{base}/pd"
routing_key = "R0UT1NG"

[policies.standard.first_response]
escalate = [
  {{at = "75%", to = "oncall"}}, {{at = "100%", to = "pd"}}, {{at = "-30m", to = "oncall"}},
]
repeat_after_breach = {{every = "1h", to = "oncall"}}

[policies.standard.resolution]
calendar = "smartertools"
breach = "8h"
escalate = [{{at = "100%", to = "oncall"}}]

[policies.emergency.first_response]
escalate = [{{at = "100%", to = "oncall", during = "smartertools"}}]
"""


class World:
    def __init__(self, url: str, base: str, tmp: Path) -> None:
        path = tmp / "sla.toml"
        path.write_text(CONFIG.format(base=base, secret=SECRET))
        self.config = load_config(path, env={}, database_url=url)
        upgrade(url)
        self.db = make_engine(url)
        self.sessions = make_sessionmaker(self.db)
        self.now = [MON_8]
        self.esc = build_escalations(
            self.config,
            self.sessions,
            clock=lambda: self.now[0],
            settings=EscalationSettings(max_attempts=2),
        )
        self.tickets = TicketService(
            self.sessions, self.config, clock=lambda: self.now[0], hooks=[self.esc.hook]
        )

    def at(self, when: datetime) -> Any:
        self.now[0] = when
        return self.esc.engine.tick(when)

    def event(self, ticket: str, event_id: str, kind: str, occurred_at: datetime) -> None:
        self.tickets.add_event(ticket, EventCreate(event_id, kind, occurred_at))

    def timers(self, ticket: str = "T-1") -> dict[str, tuple[str, datetime]]:
        with self.sessions.begin() as s:
            rows = s.query(EscalationTimer).filter_by(ticket_id=ticket)
            return {f"{r.metric}:{r.threshold}": (r.status, r.due_at.astimezone(PHX)) for r in rows}

    def deliveries(self, ticket: str = "T-1") -> list[EscalationDelivery]:
        with self.sessions.begin() as s:
            return list(
                s.query(EscalationDelivery)
                .filter_by(ticket_id=ticket)
                .order_by(EscalationDelivery.created_at, EscalationDelivery.id)
            )


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[World, Receiver]]:
    rec = Receiver()
    with serve_app(rec) as base:
        w = World(db_url, base, tmp_path)
        yield w, rec
        w.esc.engine.stop()
        w.db.dispose()


def test_creating_a_ticket_plans_its_thresholds_in_business_time(world) -> None:
    w, _rec = world
    friday_3pm = datetime(2026, 11, 20, 15, 0, tzinfo=PHX)
    w.now[0] = friday_3pm
    w.tickets.create_ticket(TicketCreate("T-1", "standard", friday_3pm))
    timers = w.timers()
    # 4 business hours from Fri 15:00 on 08:00-17:00: 2h on Friday, breach Mon 10:00.
    assert timers["first_response:75%"] == ("pending", datetime(2026, 11, 23, 9, 0, tzinfo=PHX))
    assert timers["first_response:-30m"] == ("pending", datetime(2026, 11, 23, 9, 30, tzinfo=PHX))
    assert timers["first_response:100%"] == ("pending", datetime(2026, 11, 23, 10, 0, tzinfo=PHX))
    assert timers["first_response:repeat:1"] == (
        "pending",
        datetime(2026, 11, 23, 11, 0, tzinfo=PHX),
    )
    assert timers["resolution:100%"][1] == datetime(2026, 11, 23, 14, 0, tzinfo=PHX)


def test_thresholds_fire_in_turn_and_a_reply_cancels_the_rest(world) -> None:
    w, rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    assert w.at(MON_8 + timedelta(hours=2, minutes=59)).fire.fired == 0
    assert w.at(MON_8 + timedelta(hours=3)).deliver.sent == 1
    assert w.at(MON_8 + timedelta(hours=3, minutes=30)).deliver.sent == 1
    assert [r.json["threshold"] for r in rec.received] == ["75%", "-30m"]
    w.now[0] = MON_8 + timedelta(hours=3, minutes=45)
    w.event("T-1", "e1", "agent_reply", w.now[0])
    timers = w.timers()
    assert timers["first_response:100%"][0] == "cancelled"
    assert timers["first_response:repeat:1"][0] == "cancelled"
    assert timers["resolution:100%"][0] == "pending"
    assert w.at(MON_8 + timedelta(hours=6)).fire.fired == 0
    assert len(rec.received) == 2


def test_pending_moves_the_resolution_timer_by_the_paused_business_time(world) -> None:
    w, _rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    w.now[0] = MON_8 + timedelta(hours=1)
    w.event("T-1", "p", "pending", w.now[0])
    assert w.timers()["resolution:100%"][0] == "cancelled"
    w.now[0] = MON_8 + timedelta(hours=3)
    w.event("T-1", "o", "open", w.now[0])
    status, due = w.timers()["resolution:100%"]
    assert status == "pending"
    assert due == datetime(2026, 11, 24, 9, 0, tzinfo=PHX)


def test_a_breach_sent_to_pagerduty_is_resolved_when_the_metric_stops(world) -> None:
    w, rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    w.at(MON_8 + timedelta(hours=4))
    triggers = [r.json for r in rec.received if r.path == "/pd"]
    assert [t["event_action"] for t in triggers] == ["trigger"]
    assert triggers[0]["payload"]["severity"] == "critical"
    w.now[0] = MON_8 + timedelta(hours=4, minutes=10)
    w.event("T-1", "e1", "agent_reply", w.now[0])
    w.at(w.now[0])
    pd = [r.json for r in rec.received if r.path == "/pd"]
    assert [p["event_action"] for p in pd] == ["trigger", "resolve"]
    assert pd[1]["dedup_key"] == pd[0]["dedup_key"]
    assert pd[1]["routing_key"] == "R0UT1NG"


def test_a_late_reply_before_the_deadline_keeps_sent_escalations_and_resolves(world) -> None:
    w, _rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    w.at(MON_8 + timedelta(hours=4))
    w.now[0] = MON_8 + timedelta(hours=4, minutes=5)
    w.event("T-1", "late", "agent_reply", MON_8 + timedelta(hours=3, minutes=50))
    state = w.tickets.sla("T-1").metrics["first_response"]
    assert state.status == "achieved"
    w.at(w.now[0])
    kinds = [(d.kind, d.status) for d in w.deliveries() if d.destination == "pd"]
    assert kinds == [("trigger", "sent"), ("resolve", "sent")]


def test_an_answer_cancels_a_fired_but_undelivered_trigger(world) -> None:
    w, rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    w.now[0] = MON_8 + timedelta(hours=4)
    assert w.esc.engine.fire_due(w.now[0]).fired == 1
    w.now[0] += timedelta(seconds=1)
    w.event("T-1", "e1", "agent_reply", w.now[0])
    w.esc.engine.deliver_due(w.now[0])
    assert [r for r in rec.received if r.path == "/pd"] == []
    assert {d.status for d in w.deliveries() if d.destination == "pd"} == {"cancelled"}


def test_during_holds_an_emergency_escalation_until_business_hours(world) -> None:
    w, rec = world
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=PHX)
    w.now[0] = saturday
    w.tickets.create_ticket(TicketCreate("E-1", "emergency", saturday))
    assert w.at(saturday + timedelta(hours=1)).fire.fired == 1
    assert rec.received == []
    [row] = w.deliveries("E-1")
    assert row.not_before == datetime(2026, 11, 30, 8, 0, tzinfo=PHX)
    w.at(row.not_before)
    assert [r.json["ticket_id"] for r in rec.received] == ["E-1"]


def test_a_duplicate_event_does_not_replan(world) -> None:
    w, _rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    before = w.timers()
    w.now[0] = MON_8 + timedelta(minutes=5)
    w.event("T-1", "c1", "customer_reply", w.now[0])
    w.event("T-1", "c1", "customer_reply", w.now[0])
    assert w.timers() == before


def test_a_resolve_waits_for_a_trigger_still_being_sent(world) -> None:
    from sla_engine.escalation import outbox

    w, _rec = world
    w.tickets.create_ticket(TicketCreate("T-1", "standard", MON_8))
    w.now[0] = MON_8 + timedelta(hours=4)
    w.esc.engine.fire_due(w.now[0])
    with w.sessions.begin() as s:
        [leased] = outbox.claim(
            s, now=w.now[0], lease=timedelta(seconds=30), limit=10, worker="slow"
        )
    assert leased.kind == "trigger"
    w.now[0] += timedelta(seconds=5)
    w.event("T-1", "e1", "agent_reply", w.now[0])
    [resolve] = [d for d in w.deliveries() if d.kind == "resolve"]
    assert resolve.not_before == MON_8 + timedelta(hours=4, seconds=30)
