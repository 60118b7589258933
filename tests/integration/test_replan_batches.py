"""A re-plan in batches (a few statements per batch for all its tickets) leaves the database
exactly as re-planning the same tickets one by one does, on SQLite and PostgreSQL.

Two databases get the same tickets (open, paused, solved, breached, with events, with a fired
threshold and a repeat after the breach) from the same clock; the calendar's hours are cut in
both; one is re-planned by the job in batches of 3, the other ticket by ticket through the
single-ticket path (`refresh_in_session`, each hook's `on_state`). Every stored row then
matches: tickets (saved clock, queue keys), metric rows, checkpoints, escalation timers,
queue calendar rows and the outbox. The bulk UPDATE the batches write with is checked on its
own too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from sla_engine.calendar_store.replan import Replanner
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.escalation.models import EscalationTimer
from sla_engine.storage.bulk_update import update_rows
from sla_engine.storage.db import make_engine
from sla_engine.storage.types import UTCDateTime
from sla_engine.tickets import EventCreate, TicketCreate
from sla_engine.tickets.metric_rows import encoded_metric_rows, metric_values, stored_rows
from tests.conftest import pg_database
from tests.support.calendars import ESCALATING_CONFIG, Clock, support_hours

PHOENIX = ZoneInfo("America/Phoenix")
START = datetime(2026, 12, 2, 8, 0, tzinfo=PHOENIX)  # Wednesday 08:00 in Phoenix
NOW = START + timedelta(hours=6)
MORNINGS = support_hours("08:00-13:00")
CONFIG = (
    ESCALATING_CONFIG
    + """
[policies.desk.first_response]
calendar = "smartertools"
breach = "2h"
escalate = [{at = "75%", to = "oncall"}]
repeat_after_breach = {every = "1h", to = "oncall"}
"""
)
TICKETS = 16
# Every stored table, rows by their natural key (generated ids left out).
TABLES = {
    "tickets": "id",
    "ticket_metrics": "ticket_id, metric",
    "ticket_checkpoints": "ticket_id, occurred_at, seq",
    "escalation_timers": "ticket_id, metric, cycle, threshold",
    "ticket_queue_calendars": "ticket_id, calendar",
    "escalation_deliveries": "ticket_id, metric, cycle, threshold, destination",
}


@pytest.fixture
def second_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'one-by-one.db'}"
        return
    with pg_database() as url:
        yield url


def build(url: str, folder: Path, clock: Clock) -> Services:
    config_file = folder / "config.toml"
    config_file.write_text(CONFIG)
    return build_services(load_config(config_file, env={}, database_url=url), clock=clock)


def open_tickets(services: Services, clock: Clock) -> None:
    """The same tickets in each database, written at the same instants."""
    tickets = services.tickets
    for n in range(TICKETS):
        created = START + timedelta(minutes=11 * n)
        clock.now = created
        policy = "desk" if n % 3 == 0 else "standard"
        tickets.create_ticket(TicketCreate(id=f"T-{n:02d}", policy=policy, created_at=created))
    for n in range(0, TICKETS, 4):  # paused, some resumed
        clock.now = START + timedelta(hours=4, minutes=30)
        tickets.add_event(f"T-{n:02d}", EventCreate("p", "pending", clock.now))
        if n % 8 == 0:
            tickets.add_event(f"T-{n:02d}", EventCreate("o", "open", clock.now))
    for n in range(1, TICKETS, 5):  # answered: the metric stops
        clock.now = START + timedelta(hours=4, minutes=45)
        tickets.add_event(f"T-{n:02d}", EventCreate("r", "agent_reply", clock.now))
    clock.now = NOW
    # the first threshold of some tickets has fired (the same rows in both databases)
    with services.sessionmaker.begin() as session:
        t = EscalationTimer
        session.execute(
            sa.update(t)
            .where(
                t.status == "pending",
                t.ticket_id.in_(["T-02", "T-03", "T-06", "T-09", "T-12"]),
                t.threshold.in_(["50%", "75%"]),
            )
            .values(status="fired", fired_at=NOW)
        )


def dump(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    with services.engine.connect() as conn:
        for table, order in TABLES.items():
            columns = [
                c["name"]
                for c in sa.inspect(conn).get_columns(table)
                if not (c["name"] == "id" and table != "tickets")
            ]
            rows = conn.execute(
                sa.text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
            )
            found[table] = [tuple(r) for r in rows]
    return found


def test_a_replan_in_batches_equals_one_ticket_at_a_time(
    db_url: str, second_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLA_ENGINE_CALENDARS", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clock = Clock(START)
    batched = build(db_url, tmp_path / "a", clock)
    single = build(second_url, tmp_path / "b", clock)
    try:
        for services in (batched, single):
            open_tickets(services, clock)
        assert dump(batched) == dump(single)
        clock.now = NOW + timedelta(minutes=1)
        for services in (batched, single):
            store = services.calendar_store
            assert store is not None
            store.put("smartertools", MORNINGS)
        store = batched.calendar_store
        assert store is not None and store.replanner is not None
        store.replanner.batch = 3
        done = store.replanner.run_pending()
        assert done > 3 * 3  # the open tickets, in more than three batches
        one_by_one = Replanner(
            single.sessionmaker, single.tickets.refresh_in_session, clock, batch=3
        )
        assert one_by_one.refresh_many is None
        assert one_by_one.run_pending() == done
        after = dump(batched)
        assert after == dump(single)
        statuses = {row[5] for row in after["escalation_timers"]}
        assert {"pending", "fired", "cancelled"} <= statuses  # the cases are there
        # and the rows of the tickets re-planned (a metric running now) are the replay's: the
        # batch UPDATE writes only the columns that moved
        ids = sorted({row[0] for row in after["ticket_metrics"]})
        with batched.sessionmaker.begin() as session:
            stored = stored_rows(session, ids)
            replanned = [t for t in ids if any(r[7] is None for r in stored[t].values())]
            assert len(replanned) == done
            for ticket_id in replanned:
                fresh = batched.tickets.state_in_session(session, ticket_id, clock.now)
                assert stored[ticket_id] == encoded_metric_rows(metric_values(fresh)), ticket_id
    finally:
        batched.close()
        single.close()


def test_update_rows_sets_each_row_by_its_key(db_url: str) -> None:
    """`storage.bulk_update.update_rows`: one statement over JSON rows on PostgreSQL, executemany
    on SQLite; each row gets its own values (instants in any zone, None), the others none."""
    meta = sa.MetaData()
    table = sa.Table(
        "bulk_rows",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime),
        sa.Column("status", sa.String(16), nullable=True),
    )
    engine = make_engine(db_url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table),
                [{"id": n, "at": NOW + timedelta(hours=n), "status": "pending"} for n in (1, 2, 3)],
            )
            update_rows(
                conn,
                table,
                ("id", "at", "status"),
                [(1, START, None), (3, datetime(2027, 1, 1, tzinfo=UTC), "fired")],
            )
            update_rows(conn, table, ("id", "status"), [])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, START, None),
        (2, NOW + timedelta(hours=2), "pending"),
        (3, datetime(2027, 1, 1, tzinfo=UTC), "fired"),
    ]


def test_update_rows_by_a_two_column_key(db_url: str) -> None:
    """`update_rows(..., keys=2)`: rows found by both key columns (a row sharing one of them
    is left); JSON values as Python objects, read back equal."""
    meta = sa.MetaData()
    table = sa.Table(
        "bulk_pairs",
        meta,
        sa.Column("ticket", sa.String(16), primary_key=True),
        sa.Column("metric", sa.String(16), primary_key=True),
        sa.Column("saved", sa.JSON, nullable=True),
        sa.Column("elapsed", sa.Float),
    )
    keys = [("a", "first"), ("a", "next"), ("b", "first")]
    engine = make_engine(db_url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table),
                [{"ticket": t, "metric": m, "saved": {"n": 0}, "elapsed": 0.0} for t, m in keys],
            )
            update_rows(
                conn,
                table,
                ("ticket", "metric", "saved", "elapsed"),
                [("a", "next", {"rows": [1, "é", None]}, 0.1), ("b", "first", [], 1e-6)],
                keys=2,
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.ticket, table.c.metric)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("a", "first", {"n": 0}, 0.0),
        ("a", "next", {"rows": [1, "é", None]}, 0.1),
        ("b", "first", [], 1e-6),
    ]
