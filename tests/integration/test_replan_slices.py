"""Re-plan jobs on SQLite and PostgreSQL: a large job split into slices that several processes
work at once, two quick changes of one calendar walking the tickets once, and a retroactive
change reaching the tickets that moved away from the calendar after its start."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from sla_engine.calendar_store import CalendarStore
from sla_engine.calendar_store.models import CalendarReplan
from sla_engine.calendar_store.replan import Replanner
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.storage.models import TicketMetric
from sla_engine.tickets import EventCreate, TicketCreate
from tests.support.calendars import ESCALATING_CONFIG, Clock, support_hours, weekdays

PHOENIX = ZoneInfo("America/Phoenix")
START = datetime(2026, 12, 2, 8, 0, tzinfo=PHOENIX)  # Wednesday 08:00 in Phoenix
NOW = START + timedelta(hours=6)
TICKETS = 30


@pytest.fixture
def services(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.delenv("SLA_ENGINE_CALENDARS", raising=False)
    config_file = tmp_path / "config.toml"
    config_file.write_text(ESCALATING_CONFIG)
    built = build_services(load_config(config_file, env={}, database_url=db_url), clock=Clock(NOW))
    try:
        yield built
    finally:
        built.close()


def calendars(services: Services) -> CalendarStore:
    store = services.calendar_store
    assert store is not None and store.replanner is not None
    return store


def open_tickets(services: Services, count: int = TICKETS) -> list[str]:
    ids = [f"T-{n:03d}" for n in range(count)]
    for n, ticket_id in enumerate(ids):
        created = START + timedelta(minutes=7 * n)
        services.tickets.create_ticket(
            TicketCreate(id=ticket_id, policy="standard", created_at=created)
        )
    return ids


def jobs(services: Services) -> list[dict[str, Any]]:
    r = CalendarReplan
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                r.version,
                r.effective_from,
                r.retroactive,
                r.cursor,
                r.tickets_done,
                r.after_ticket,
                r.through_ticket,
                r.finished_at,
            ).order_by(r.id)
        )
        return [dict(row._mapping) for row in rows]


def metric_rows(services: Services, ticket_id: str) -> list[tuple[Any, ...]]:
    m = TicketMetric
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                m.metric,
                m.cycle,
                m.status,
                m.calendar,
                m.started_at,
                m.target_at,
                m.breach_at,
                m.stopped_at,
                m.business_elapsed_s,
            )
            .where(m.ticket_id == ticket_id)
            .order_by(m.metric)
        )
        return [tuple(r) for r in rows]


def counting(replanner: Replanner, services: Services) -> list[str]:
    """Every ticket id the replanner refreshes, in order (repeats kept)."""
    seen: list[str] = []

    def refresh_many(session: Any, ids: list[str], now: datetime) -> Any:
        seen.extend(ids)
        return services.tickets.refresh_many_in_session(session, ids, now)

    replanner.refresh_many = refresh_many
    if replanner.prepare is not None:  # SQLite: the batch is read outside the writer lock

        def prepare(conn: Any, ids: list[str], now: datetime) -> Any:
            seen.extend(ids)
            return services.tickets.prepare_refresh(conn, ids, now)

        replanner.prepare = prepare
    return seen


# --- slices -------------------------------------------------------------------------------


def test_a_large_job_is_split_into_slices_each_ticket_done_once(services: Services) -> None:
    ids = open_tickets(services)
    store = calendars(services)
    Clock.of(services).now = NOW + timedelta(minutes=1)
    store.put("smartertools", support_hours("08:00-13:00"))
    first = store.replanner
    assert first is not None
    first.batch, first.slice_size = 3, 8
    other = Replanner(
        services.sessionmaker,
        services.tickets.refresh_in_session,
        Clock.of(services),
        batch=3,
        slice_size=8,
    )
    seen_first = counting(first, services)
    seen_other = counting(other, services)
    # the first process takes the job and splits it; the other takes the next slice at once
    job = first._claim()
    assert job is not None and job.after_ticket is None and job.through_ticket is not None
    rows = jobs(services)
    assert len(rows) == TICKETS // 8
    assert [r["after_ticket"] for r in rows[1:]] == [r["through_ticket"] for r in rows[:-1]]
    assert rows[-1]["through_ticket"] is None
    taken = other._claim()
    assert taken is not None and taken.after_ticket == job.through_ticket
    other.run_job(taken)
    first.run_job(job)
    first.run_pending()
    other.run_pending()
    done = seen_first + seen_other
    assert sorted(done) == ids  # every ticket once, none twice
    assert all(r["finished_at"] is not None for r in jobs(services))
    assert sum(r["tickets_done"] for r in jobs(services)) == TICKETS
    # each ticket's rows are those of a fresh replay
    before = {t: metric_rows(services, t) for t in ids}
    for ticket_id in ids:
        services.tickets.refresh(ticket_id)
    assert {t: metric_rows(services, t) for t in ids} == before
    assert {r[6] for r in before["T-000"] if r[0] == "first_response"} != {None}


def test_a_small_job_stays_whole(services: Services) -> None:
    open_tickets(services, 5)
    store = calendars(services)
    store.put("smartertools", support_hours("08:00-13:00"))
    assert store.replanner is not None
    store.replanner.slice_size = 3  # 5 tickets: fewer than two slices of 3
    assert store.replanner.run_pending() == 5
    assert len(jobs(services)) == 1


# --- coalescing ---------------------------------------------------------------------------


def test_two_quick_changes_walk_the_tickets_once(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    ids = open_tickets(services, 6)
    store = calendars(services)
    Clock.of(services).now = NOW + timedelta(minutes=1)
    store.put("smartertools", support_hours("08:00-13:00"), effective_from=NOW, retroactive=True)
    store.put("smartertools", support_hours("08:00-12:00"))
    rows = jobs(services)
    assert [(r["version"], r["finished_at"] is None) for r in rows] == [(2, False), (3, True)]
    assert rows[1]["effective_from"] == NOW  # the earlier start of the two
    assert rows[1]["retroactive"] is True  # one of them was
    assert store.replanner is not None
    seen = counting(store.replanner, services)
    caplog.set_level("INFO")
    assert store.replanner.run_pending() == 6
    assert sorted(seen) == ids
    assert "version 3 is retroactive" in caplog.text
    for ticket_id in ids:
        fresh = services.tickets.sla(ticket_id).metrics["first_response"].breach_at
        assert metric_rows(services, ticket_id)[0][6] == fresh


def test_a_job_in_progress_is_covered_by_a_newer_one(services: Services) -> None:
    ids = open_tickets(services, 12)
    store = calendars(services)
    Clock.of(services).now = NOW + timedelta(minutes=1)
    store.put("smartertools", support_hours("08:00-13:00"))
    replanner = store.replanner
    assert replanner is not None
    replanner.batch = 4
    job = replanner._claim()
    assert job is not None
    assert replanner._batch(job, None) == (4, ids[3])  # a batch done, the job in progress
    store.put("smartertools", support_hours("08:00-12:00"))
    # the worker of the covered job loses its lease at its next batch (rolled back)
    assert replanner._batch(job, ids[3]) is None
    rows = jobs(services)
    assert [(r["version"], r["finished_at"] is None) for r in rows] == [(2, False), (3, True)]
    assert rows[0]["tickets_done"] == 4
    seen = counting(replanner, services)
    assert replanner.run_pending() == 12
    assert sorted(seen) == ids


# --- tickets that moved away --------------------------------------------------------------

MOVE_NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 11:00 in Sydney


def test_a_retroactive_change_replans_a_ticket_that_moved_away_after_its_start(
    services: Services,
) -> None:
    """Berlin 09:00-12:00 (3 h), then Sydney: breached at 10:00 Sydney. Berlin cut back to
    09:00-10:00 retroactively from before the move: 1 h in Berlin, 3 h in Sydney, due 12:00."""
    clock = Clock.of(services)
    clock.now = MOVE_NOW
    tickets = services.tickets
    tickets.create_ticket(
        TicketCreate(
            id="FTS-1",
            policy="standard",
            created_at=datetime.fromisoformat("2026-11-23T09:00:00+01:00"),
            calendar="example-berlin",
        )
    )
    moved_at = datetime.fromisoformat("2026-11-23T12:00:00+01:00")
    tickets.add_event(
        "FTS-1", EventCreate("move-1", "calendar_changed", moved_at, {"calendar": "example-sydney"})
    )
    open_tickets(services, 3)  # on smartertools: not affected
    before = metric_rows(services, "FTS-1")
    assert {r[3] for r in before} == {"example-sydney"}
    store = calendars(services)
    store.put(
        "example-berlin",
        weekdays("09:00-10:00", "Europe/Berlin"),
        effective_from=datetime.fromisoformat("2026-11-23T00:00:00+01:00"),
        retroactive=True,
    )
    assert store.replanner is not None
    seen = counting(store.replanner, services)
    store.replanner.run_pending()
    assert seen == ["FTS-1"]
    replanned = metric_rows(services, "FTS-1")
    assert replanned != before
    tickets.refresh("FTS-1")  # a fresh replay
    assert metric_rows(services, "FTS-1") == replanned
    fr = tickets.sla("FTS-1").metrics["first_response"]
    assert fr.breach_at == datetime.fromisoformat("2026-11-24T12:00:00+11:00")


def test_a_split_needs_the_job_whole_unstarted_and_leased(services: Services) -> None:
    from sla_engine.calendar_store import replan_store as sql

    open_tickets(services)
    calendars(services).put("smartertools", support_hours("08:00-13:00"))
    now = Clock.of(services).now
    with services.sessionmaker.begin() as session:
        job = sql.claim_replan(session, "a", now, now + timedelta(seconds=10))
    assert job is not None and job.whole
    later = now + timedelta(seconds=11)  # a's lease ran out: b takes the job
    with services.sessionmaker.begin() as session:
        assert sql.claim_replan(session, "b", later, later + timedelta(seconds=10)) is not None
        assert sql.split_replan(session, job, "a", ["T-010", "T-020"], later) is None
    assert len(jobs(services)) == 1
    with services.sessionmaker.begin() as session:
        split = sql.split_replan(session, job, "b", ["T-010", "T-020"], later)
    assert split is not None and (split.after_ticket, split.through_ticket) == (None, "T-010")
    assert [(r["after_ticket"], r["through_ticket"]) for r in jobs(services)] == [
        (None, "T-010"),
        ("T-010", "T-020"),
        ("T-020", None),
    ]
