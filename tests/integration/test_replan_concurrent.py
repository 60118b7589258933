"""A re-plan batch read and replayed outside the write transaction (on SQLite, outside the
writer lock), then written: what another process wrote in between is neither lost nor
overwritten, on SQLite and PostgreSQL.

Between the unlocked read (`prepare_refresh`) and the locked write (`write_refresh`) a ticket
of the batch gets an event and another one's threshold fires. The write reads the batch's
ticket and timer rows again, leaves those two out of the prepared writes and replays them
again inside its transaction: afterwards every ticket's rows are those of a fresh replay (a
replay then writes nothing), the event's effect is stored and the fired timer stays fired.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sla_engine.composition import Services
from sla_engine.escalation.models import EscalationTimer
from sla_engine.tickets import EventCreate
from tests.integration.test_replan_batches import MORNINGS, NOW, START, build, open_tickets
from tests.integration.test_replan_writes import WRITTEN, replan, rows_of, ticket_ids, updates
from tests.support.calendars import Clock

ANSWERED = "T-05"  # open, its first response running: an agent reply stops it
FIRED = "T-07"  # its 50% threshold fires meanwhile


@pytest.fixture
def built(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.delenv("SLA_ENGINE_CALENDARS", raising=False)
    services = build(db_url, tmp_path, Clock(START))
    try:
        open_tickets(services, Clock.of(services))
        yield services
    finally:
        services.close()


def change_hours(services: Services) -> None:
    """The new version, stored without running its job (the tests run the batch)."""
    Clock.of(services).now = NOW + timedelta(minutes=1)
    store = services.calendar_store
    assert store is not None
    store.put("smartertools", MORNINGS)


def reader(services: Services) -> sa.engine.Engine:
    """The plain reading engine (on SQLite it takes no writer lock)."""
    store = services.calendar_store
    assert store is not None
    return store.source.reader


def write_between(services: Services, now: datetime) -> None:
    """Another process's writes: an event for one ticket, a firing of another's timer."""
    services.tickets.add_event(ANSWERED, EventCreate("reply-1", "agent_reply", now))
    with services.sessionmaker.begin() as session:
        t = EscalationTimer
        fired = session.execute(
            sa.update(t)
            .where(t.ticket_id == FIRED, t.status == "pending", t.threshold == "50%")
            .values(status="fired", fired_at=now, updated_at=now)
        )
        assert fired.rowcount == 1  # type: ignore[attr-defined]


def timer_status(services: Services, ticket_id: str, threshold: str) -> str:
    with services.engine.connect() as conn:
        return str(
            conn.execute(
                sa.text(
                    "SELECT status FROM escalation_timers WHERE ticket_id = :t AND threshold = :h"
                ),
                {"t": ticket_id, "h": threshold},
            ).scalar_one()
        )


def assert_as_fresh_replay(services: Services, now: datetime, ids: list[str]) -> None:
    """A replay of `ids` now finds nothing to write: their rows are the replay's."""
    before = {table: rows_of(services, table, "1") for table in WRITTEN}
    with updates(services) as counts:
        replan(services, ids, now)
    assert counts == {}
    assert {table: rows_of(services, table, "1") for table in WRITTEN} == before


def test_a_write_between_the_unlocked_read_and_the_write_is_kept(built: Services) -> None:
    change_hours(built)
    now = Clock.of(built).now
    ids = ticket_ids(built)
    assert ANSWERED in ids and FIRED in ids
    assert timer_status(built, FIRED, "50%") == "pending"
    with reader(built).connect() as conn:
        prepared = built.tickets.prepare_refresh(conn, ids, now)
        conn.rollback()
    write_between(built, now)
    with built.sessionmaker.begin() as session:
        again = built.tickets.write_refresh(session, prepared, now)
    assert again == [ANSWERED, FIRED]  # replayed again inside the write, the others as read
    assert timer_status(built, FIRED, "50%") == "fired"  # not put back to pending
    with built.engine.connect() as conn:
        stopped = conn.execute(
            sa.text(
                "SELECT stopped_at FROM ticket_metrics WHERE ticket_id = :t "
                "AND metric = 'first_response'"
            ),
            {"t": ANSWERED},
        ).scalar_one()
    assert stopped is not None  # the reply's effect is stored, not the plan made before it
    assert_as_fresh_replay(built, now, ids)


def test_a_batch_with_nothing_written_between_is_written_as_prepared(built: Services) -> None:
    change_hours(built)
    now = Clock.of(built).now
    ids = ticket_ids(built)
    with reader(built).connect() as conn:
        prepared = built.tickets.prepare_refresh(conn, ids, now)
        conn.rollback()
    with built.sessionmaker.begin() as session:
        assert built.tickets.write_refresh(session, prepared, now) == []
    assert_as_fresh_replay(built, now, ids)


def test_the_replan_job_keeps_a_write_made_while_it_read(built: Services) -> None:
    """The job itself (SQLite: its batch read outside the writer lock; PostgreSQL: read and
    written in one transaction) with the writes landing while its first batch is prepared."""
    change_hours(built)
    now = Clock.of(built).now
    store = built.calendar_store
    assert store is not None and store.replanner is not None
    replanner = store.replanner
    replanner.batch = 100  # one batch: every ticket
    split = replanner._split()
    assert split == built.engine.dialect.name.startswith("sqlite")
    walked: list[str] = []
    if split:
        prepare = replanner.prepare
        assert prepare is not None

        def prepare_then_write(conn: Any, ids: list[str], at: datetime) -> Any:
            prepared = prepare(conn, ids, at)
            if not walked:
                write_between(built, now)
            walked.extend(ids)
            return prepared

        replanner.prepare = prepare_then_write
    else:
        refresh_many = replanner.refresh_many
        assert refresh_many is not None

        def walk(session: Any, ids: list[str], at: datetime) -> Any:
            walked.extend(ids)
            return refresh_many(session, ids, at)

        replanner.refresh_many = walk
        write_between(built, now)
    assert replanner.run_pending() > 0
    assert ANSWERED in walked and FIRED in walked
    assert timer_status(built, FIRED, "50%") == "fired"
    assert_as_fresh_replay(built, now, walked)
