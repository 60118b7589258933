"""A `during` hold follows a new version of its calendar, on SQLite and PostgreSQL.

Real parts: the composed services (ticket service, calendar store, escalation engine), the
stored calendar versions, a receiver on 127.0.0.1, and the HTTP API for one PUT. The clock is
injected. The `office` calendar (a file: weekdays 08:00-17:00 Phoenix) holds the gold
escalation of a ticket opened on Saturday until Monday 08:00; a new version of `office` moves
that hold in the same transaction as the version.
"""

from __future__ import annotations

import logging
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
from sla_engine.calendar_store import CalendarStore
from sla_engine.calendar_store.changes import CalendarChanges
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.escalation import store
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.tickets import TicketCreate
from tests.support.calendars import Clock, weekdays, weekdays_toml
from tests.support.escalation_receiver import Receiver
from tests.support.server import serve_app

PHX = ZoneInfo("America/Phoenix")
CONFIG = """\
[[destinations]]
name = "oncall"
type = "webhook"
url = "{base}/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[policies.gold.first_response]
calendar = "24x7"
breach = "30m"
escalate = [{{at = "100%", to = "oncall", during = "office"}}]
"""


def phx(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Phoenix: the 5th is a Saturday, the 6th Sunday, the 7th Monday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=PHX)


OFFICE = weekdays("08:00-17:00")
SUNDAY_EVENINGS = {**OFFICE, "hours": {**OFFICE["hours"], "sun": ["20:00-24:00"]}}
LATE_MONDAYS = weekdays("10:00-17:00")


@dataclass
class Desk:
    services: Services
    clock: Clock
    receiver: Receiver
    calendars: Path

    @property
    def store(self) -> CalendarStore:
        assert self.services.calendar_store is not None
        return self.services.calendar_store

    def held(self, ticket_id: str = "G-1") -> datetime:
        """Open the ticket on Saturday 10:00 and fire its breach at 10:30: held to Monday."""
        self.clock.now = phx(5, 10)
        self.services.tickets.create_ticket(TicketCreate(ticket_id, "gold", phx(5, 10)))
        self.tick(phx(5, 10, 30))
        assert self.receiver.received == []
        return self.not_before(ticket_id)

    def tick(self, when: datetime) -> Any:
        self.clock.now = when
        return self.services.escalations.engine.tick(when)

    def delivery(self, ticket_id: str = "G-1") -> EscalationDelivery:
        with self.services.sessionmaker.begin() as session:
            return session.execute(
                sa.select(EscalationDelivery).where(EscalationDelivery.ticket_id == ticket_id)
            ).scalar_one()

    def not_before(self, ticket_id: str = "G-1") -> datetime:
        return self.delivery(ticket_id).not_before.astimezone(PHX)

    def sent(self) -> list[str]:
        return [r.json["ticket_id"] for r in self.receiver.received]


@pytest.fixture
def desk(
    db_url: str, tmp_path: Path, calendar_dir: Path, receiver: tuple[Receiver, str]
) -> Iterator[Desk]:
    rec, base = receiver
    (calendar_dir / "office.toml").write_text(weekdays_toml("office"))
    (calendar_dir / "other.toml").write_text(weekdays_toml("other"))
    config_file = tmp_path / "config.toml"
    config_file.write_text(CONFIG.format(base=base))
    clock = Clock(phx(5, 9))
    services = build_services(load_config(config_file, env={}, database_url=db_url), clock=clock)
    try:
        yield Desk(services, clock, rec, calendar_dir)
    finally:
        services.close()


def test_a_version_opening_sunday_evening_moves_the_hold_and_it_is_sent_then(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    assert desk.held() == phx(7, 8)
    desk.clock.now = phx(5, 11)
    with caplog.at_level(logging.INFO):
        desk.store.put("office", SUNDAY_EVENINGS)  # effective now: Saturday 11:00
    assert desk.not_before() == phx(6, 20)
    assert any(
        "office" in r.getMessage() and "1 held escalation" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    desk.tick(phx(6, 19, 59))
    assert desk.sent() == []
    desk.tick(phx(6, 20))
    assert desk.sent() == ["G-1"]
    assert desk.delivery().status == "sent"


def test_over_http_a_version_opening_later_moves_the_hold_later(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    app = create_app(desk.services)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        answer = client.put("/v1/calendars/office", json={"definition": LATE_MONDAYS})
        assert answer.status_code == 201, answer.text
        assert answer.json()["version"] == 2
    assert desk.not_before() == phx(7, 10)
    desk.tick(phx(7, 8))
    assert desk.sent() == []
    desk.tick(phx(7, 10))
    assert desk.sent() == ["G-1"]


def test_a_version_effective_later_counts_from_its_start(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS, effective_from=phx(6, 21))
    # Sunday opens 20:00 in the new hours, but they are in force from 21:00 only
    assert desk.not_before() == phx(6, 21)


def test_a_version_of_another_calendar_leaves_the_hold(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    desk.store.put("other", SUNDAY_EVENINGS)
    assert desk.not_before() == phx(7, 8)


def test_a_delivery_waiting_for_a_retry_keeps_its_backoff(desk: Desk) -> None:
    desk.held()
    backoff = phx(5, 11, 5)
    with desk.services.sessionmaker.begin() as session:
        row = session.get(EscalationDelivery, desk.delivery().id)
        assert row is not None
        row.attempts, row.not_before, row.last_status = 1, backoff, 503
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS)
    assert desk.not_before() == backoff


def test_a_changed_calendar_file_moves_the_hold(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    (desk.calendars / "office.toml").write_text(weekdays_toml("office", "10:00-17:00"))
    desk.store.files.sync()
    assert desk.not_before() == phx(7, 10)


def test_the_cli_path_without_a_calendar_cache_moves_the_hold(desk: Desk) -> None:
    """`sla-engine calendars put` stores through CalendarChanges with no StoredCalendars."""
    desk.held()
    changes = CalendarChanges(desk.services.sessionmaker, None, lambda: phx(5, 11))
    changes.put("office", SUNDAY_EVENINGS, origin="cli")
    assert desk.not_before() == phx(6, 20)


def test_a_new_version_open_now_releases_the_hold_at_once(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    desk.store.put("office", {**LATE_MONDAYS, "hours": {"sat": ["09:00-17:00"]}})
    assert desk.not_before() == phx(5, 11)
    desk.tick(phx(5, 11))
    assert desk.sent() == ["G-1"]


def test_only_deliveries_held_for_the_changed_calendar_move(desk: Desk) -> None:
    desk.held("G-1")
    desk.held("G-2")
    with desk.services.sessionmaker.begin() as session:
        session.execute(
            sa.update(EscalationDelivery)
            .where(EscalationDelivery.ticket_id == "G-2")
            .values(status="cancelled")
        )
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS)
    assert desk.not_before("G-1") == phx(6, 20)
    assert desk.not_before("G-2") == phx(7, 8)  # cancelled: left as it was


def test_a_file_version_never_open_is_still_recorded_and_the_hold_stays(desk: Desk) -> None:
    """A file edited to no hours at all is recorded (files are not checked for open time);
    with no next opening to move to, the hold is left and the version still stored."""
    desk.held()
    desk.clock.now = phx(5, 11)
    (desk.calendars / "office.toml").write_text(
        'name = "office"\ntimezone = "America/Phoenix"\n\n[hours]\n'
    )
    assert desk.store.files.sync() == [("office", 2)]
    assert desk.not_before() == phx(7, 8)


def test_a_retroactive_version_moves_the_hold_as_one_effective_now(desk: Desk) -> None:
    desk.held()
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS, effective_from=phx(5, 9), retroactive=True)
    assert desk.not_before() == phx(6, 20)


def test_a_hold_written_by_the_old_hours_after_the_version_follows_when_the_replan_ends(
    desk: Desk,
) -> None:
    """Another process may fire a timer in the moment before its calendar cache shows the
    new version: its hold keeps the old opening. The re-plan job of that version, run once
    every process sees it, moves such holds too."""
    desk.held()
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS)
    assert desk.not_before() == phx(6, 20)
    with desk.services.sessionmaker.begin() as session:  # as the stale process wrote it
        session.execute(sa.update(EscalationDelivery).values(not_before=phx(7, 8)))
    assert desk.not_before() == phx(7, 8)
    assert desk.store.replanner is not None
    desk.clock.now = phx(5, 11, 1)
    desk.store.replanner.run_pending()
    assert desk.not_before() == phx(6, 20)
    desk.tick(phx(6, 20))
    assert desk.sent() == ["G-1"]


def test_retention_keeps_the_fired_timer_of_a_delivery_still_held(desk: Desk) -> None:
    """The hold is found through its timer row's targets: pruning a fired timer whose
    delivery still waits would leave that delivery behind when its calendar changes."""
    desk.held()
    with desk.services.sessionmaker.begin() as session:
        assert store.prune(session, cutoff=phx(5, 12)) == 0  # past the timer's last change
    desk.clock.now = phx(5, 11)
    desk.store.put("office", SUNDAY_EVENINGS)
    assert desk.not_before() == phx(6, 20)


def test_retention_prunes_a_fired_timer_once_its_delivery_is_sent(desk: Desk) -> None:
    desk.held()
    desk.tick(phx(7, 8))
    assert desk.sent() == ["G-1"]
    with desk.services.sessionmaker.begin() as session:
        assert store.prune(session, cutoff=phx(7, 9)) == 2  # the sent delivery and its timer
        assert session.scalar(sa.select(sa.func.count()).select_from(EscalationTimer)) == 0
