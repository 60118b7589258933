"""Ticket clocks across calendar versions, through the Python services and over HTTP, on
SQLite and PostgreSQL.

The change is the worked example of docs/CALENDARS.md: the SmarterTools team cuts its hours
from 08:00-17:00 to 08:00-13:00 (Phoenix). A change effective now keeps the business time
already spent and every answer about an instant before it; running metrics get the new
`breach_at`, and the stored rows (metric rows, escalation timers) follow after the re-plan.
A retroactive change rewrites answers from its `effective_from` on; a version effective next
Monday already shapes today's projected `breach_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from sla_engine.api import create_app
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.escalation.models import EscalationTimer
from sla_engine.storage.models import TicketMetric
from sla_engine.tickets import TicketCreate
from tests.support.calendars import ESCALATING_CONFIG, WEEKDAYS, Clock, support_hours
from tests.support.server import serve_app

PHOENIX = ZoneInfo("America/Phoenix")
MORNING = support_hours("08:00-13:00")
CONFIG = (
    ESCALATING_CONFIG
    + """
[policies.desk.first_response]
calendar = "smartertools"
breach = "10h"
escalate = [{at = "100%", to = "oncall"}]
"""
)


def phx(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026, Phoenix wall clock (MST all year)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=PHOENIX)


@dataclass
class Desk:
    services: Services
    clock: Clock

    def open(self, ticket_id: str, policy: str, created_at: datetime) -> None:
        self.services.tickets.create_ticket(
            TicketCreate(id=ticket_id, policy=policy, created_at=created_at)
        )

    def sla(self, ticket_id: str, at: datetime | None = None) -> dict[str, Any]:
        state = self.services.tickets.sla(ticket_id, at)
        return dict(state.to_json()["metrics"]["first_response"])

    def change(self, **kwargs: Any) -> None:
        store = self.services.calendar_store
        assert store is not None
        store.put("smartertools", MORNING, **kwargs)

    def replan(self) -> None:
        store = self.services.calendar_store
        assert store is not None and store.replanner is not None
        store.replanner.run_pending()

    def stored_breach(self, ticket_id: str) -> datetime | None:
        with self.services.sessionmaker.begin() as session:
            return session.scalar(
                sa.select(TicketMetric.breach_at).where(
                    TicketMetric.ticket_id == ticket_id, TicketMetric.metric == "first_response"
                )
            )

    def timers(self, ticket_id: str) -> list[tuple[str, str, datetime]]:
        with self.services.sessionmaker.begin() as session:
            rows = session.execute(
                sa.select(EscalationTimer.threshold, EscalationTimer.status, EscalationTimer.due_at)
                .where(EscalationTimer.ticket_id == ticket_id)
                .order_by(EscalationTimer.id)
            )
            return [tuple(r) for r in rows]


@pytest.fixture
def desk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.delenv("SLA_ENGINE_CALENDARS", raising=False)
    config_file = tmp_path / "config.toml"
    config_file.write_text(CONFIG)
    clock = Clock(phx(2, 14))  # Wednesday 2 December 2026, 14:00 in Phoenix
    services = build_services(load_config(config_file, env={}, database_url=db_url), clock=clock)
    try:
        yield Desk(services, clock)
    finally:
        services.close()


def iso(value: datetime) -> str:
    return value.isoformat()


def test_a_change_effective_now_keeps_the_past(desk: Desk) -> None:
    desk.open("T-1", "standard", phx(2, 12))
    now_before = desk.sla("T-1")
    at_1330_before = desk.sla("T-1", phx(2, 13, 30))
    assert now_before["business_elapsed_s"] == 2 * 3600
    assert now_before["breach_at"] == iso(phx(2, 16))

    desk.change()  # effective now: Wednesday 14:00

    now_after = desk.sla("T-1")
    assert now_after["business_elapsed_s"] == now_before["business_elapsed_s"]
    assert now_after["started_at"] == now_before["started_at"]
    # 2 hours left, none this afternoon any more: Thursday 08:00 + 2h
    assert now_after["breach_at"] == iso(phx(3, 10))
    assert desk.sla("T-1", phx(2, 13, 30)) == at_1330_before
    # the stored rows follow once re-planned
    assert desk.stored_breach("T-1") == phx(2, 16)
    desk.replan()
    assert desk.stored_breach("T-1") == phx(3, 10)
    pending = [(t, d) for t, s, d in desk.timers("T-1") if s == "pending"]
    assert ("100%", phx(3, 10)) in pending
    assert len(pending) == len({t for t, _ in pending})  # one row per threshold
    timers = desk.timers("T-1")
    desk.change(effective_from=phx(2, 15))  # another version, re-planned again
    desk.replan()
    assert len(desk.timers("T-1")) == len(timers) == 2  # moved, never doubled


def test_a_retroactive_change_rewrites_from_its_start(desk: Desk) -> None:
    desk.open("T-2", "desk", phx(2, 9))  # 10 business hours
    at_11_before = desk.sla("T-2", phx(2, 11))
    assert desk.sla("T-2")["breach_at"] == iso(phx(3, 10))  # Wed 8h + Thu 2h

    desk.change(effective_from=phx(2, 12), retroactive=True)

    after = desk.sla("T-2")
    # 09-12 old hours (3h), 12-13 new (1h); Thursday 5h; Friday 08:00 + 1h
    assert after["business_elapsed_s"] == 4 * 3600
    assert after["breach_at"] == iso(phx(4, 9))
    assert desk.sla("T-2", phx(2, 11)) == at_11_before  # before its start: unchanged
    assert desk.sla("T-2", phx(2, 13, 30))["business_elapsed_s"] == 4 * 3600
    desk.replan()
    assert desk.stored_breach("T-2") == phx(4, 9)


def test_a_version_from_next_monday_shapes_todays_breach(desk: Desk) -> None:
    desk.clock.now = phx(4, 13)  # Friday 13:00
    desk.open("T-3", "desk", phx(4, 13))
    assert desk.sla("T-3")["breach_at"] == iso(phx(7, 14))  # Fri 4h, Monday 08:00 + 6h

    desk.change(effective_from=phx(7, 0))  # next Monday, mornings only

    # Fri 4h (old hours), Monday 5h, Tuesday 08:00 + 1h
    assert desk.sla("T-3")["breach_at"] == iso(phx(8, 9))
    assert desk.sla("T-3")["business_elapsed_s"] == 0
    desk.replan()
    assert desk.stored_breach("T-3") == phx(8, 9)
    due = [d for t, s, d in desk.timers("T-3") if t == "100%" and s == "pending"]
    assert due == [phx(8, 9)]


def test_over_http_sla_at_before_the_change_is_unchanged(desk: Desk) -> None:
    desk.open("T-4", "standard", phx(2, 12))
    app = create_app(desk.services)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        at = iso(phx(2, 13, 30))
        before_at = client.get("/v1/tickets/T-4/sla", params={"at": at}).json()
        before_now = client.get("/v1/tickets/T-4/sla").json()
        answer = client.put(
            "/v1/calendars/smartertools",
            content=_toml(MORNING),
            headers={"Content-Type": "application/toml"},
        )
        assert answer.status_code == 201 and answer.json()["version"] == 2
        after_now = client.get("/v1/tickets/T-4/sla").json()
        assert client.get("/v1/tickets/T-4/sla", params={"at": at}).json() == before_at
        metric_before = before_now["metrics"]["first_response"]
        metric_after = after_now["metrics"]["first_response"]
        assert metric_after["business_elapsed_s"] == metric_before["business_elapsed_s"]
        assert metric_after["breach_at"] == iso(phx(3, 10))
        versions = client.get("/v1/calendars/smartertools/versions").json()
        assert [(v["version"], v["origin"]) for v in versions] == [(1, "file"), (2, "http")]


def _toml(definition: dict[str, Any]) -> str:
    hours = "\n".join(f'{day} = ["08:00-13:00"]' for day in WEEKDAYS)
    return (
        f'name = "{definition["name"]}"\ntimezone = "{definition["timezone"]}"\n\n'
        f'[hours]\n{hours}\n\n[holidays]\ncountry = "US"\nsubdiv = "AZ"\n'
    )


def test_a_stopped_replan_gives_its_lease_up_and_another_process_resumes(desk: Desk) -> None:
    from sla_engine.calendar_store.models import CalendarReplan
    from sla_engine.calendar_store.replan import Replanner

    for index in range(30):
        desk.open(f"T-{index:02d}", "standard", phx(2, 12))
    desk.change()
    store = desk.services.calendar_store
    assert store is not None and store.replanner is not None
    first = store.replanner
    first.batch = 5
    calls = []

    def refresh(session: Any, ticket_id: str, now: datetime) -> Any:
        calls.append(ticket_id)
        if len(calls) == 10:
            first.stopping.set()  # as on SIGTERM: stop after the batch in flight
        return desk.services.tickets.refresh_in_session(session, ticket_id, now)

    first.refresh = refresh
    first.refresh_many = None  # walk ticket by ticket so the stop lands mid-batch
    assert first.run_pending() == 10
    with desk.services.sessionmaker.begin() as session:
        job = session.execute(sa.select(CalendarReplan)).scalar_one()
        assert (job.cursor, job.tickets_done, job.lease_owner) == ("T-09", 10, None)
        assert job.finished_at is None
    other = Replanner(
        desk.services.sessionmaker,
        desk.services.tickets.refresh_in_session,
        desk.clock,
        batch=5,
    )
    assert other.run_pending() == 20
    assert all(desk.stored_breach(f"T-{i:02d}") == phx(3, 10) for i in range(30))
