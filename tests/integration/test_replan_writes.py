"""A batched re-plan writes only what changed, on SQLite and PostgreSQL: a ticket, metric row or
escalation timer the replay leaves as stored gets no UPDATE; a changed one is written (only
it), and ends as the replay has it. Plus the SQLite text `update_rows` writes for an instant,
which must be SQLAlchemy's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from sla_engine.composition import Services
from sla_engine.core.zoned_instant import ZonedInstant
from sla_engine.storage.bulk_update import JsonText, one_of, sqlite_utc_text, update_rows
from sla_engine.storage.db import make_engine
from sla_engine.storage.types import UTCDateTime
from tests.integration.test_replan_batches import MORNINGS, NOW, START, build, open_tickets
from tests.support.calendars import Clock

WRITTEN = ("tickets", "ticket_metrics", "escalation_timers", "ticket_queue_calendars")


@contextmanager
def updates(services: Services) -> Iterator[dict[str, int]]:
    """Rows each UPDATE of `WRITTEN` tables set while inside, by table."""
    counts: dict[str, int] = {}

    def note(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        words = sql.split()
        if words[0].upper() != "UPDATE" or words[1].strip('"') not in WRITTEN:
            return
        if isinstance(params, dict) and "rows" in params:  # PostgreSQL: one JSON parameter
            rows = len(json.loads(params["rows"]))
        else:
            rows = len(params) if many else 1
        counts[words[1].strip('"')] = counts.get(words[1].strip('"'), 0) + rows

    sa.event.listen(services.engine, "before_cursor_execute", note)
    try:
        yield counts
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", note)


def replan(services: Services, ids: list[str], now: datetime) -> None:
    with services.sessionmaker.begin() as session:
        services.tickets.refresh_many_in_session(session, ids, now)


def rows_of(services: Services, table: str, order: str) -> list[tuple[Any, ...]]:
    with services.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]


@pytest.fixture
def services(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Services, Clock]]:
    monkeypatch.delenv("SLA_ENGINE_CALENDARS", raising=False)
    clock = Clock(START)
    built = build(db_url, tmp_path, clock)
    try:
        open_tickets(built, clock)
        clock.now = NOW + timedelta(minutes=1)
        store = built.calendar_store
        assert store is not None and store.replanner is not None
        store.put("smartertools", MORNINGS)
        assert store.replanner.run_pending() > 0
        replan(built, ticket_ids(built), clock.now)  # the tickets the job left (not on it) too
        yield built, clock
    finally:
        built.close()


def ticket_ids(services: Services) -> list[str]:
    return [row[0] for row in rows_of(services, "tickets", "id")]


def test_a_replan_that_changes_nothing_writes_nothing(services: tuple[Services, Clock]) -> None:
    built, clock = services
    ids = ticket_ids(built)
    before = {table: rows_of(built, table, "1") for table in WRITTEN}
    with updates(built) as counts:
        replan(built, ids, clock.now)
    assert counts == {}
    assert {table: rows_of(built, table, "1") for table in WRITTEN} == before


def test_a_replan_writes_the_changed_ticket_and_timer_alone(
    services: tuple[Services, Clock],
) -> None:
    built, clock = services
    ids = ticket_ids(built)
    expected_tickets = rows_of(built, "tickets", "id")
    expected_timers = rows_of(built, "escalation_timers", "id")
    pending = [row for row in expected_timers if row[6] == "pending"]
    assert pending
    with built.engine.begin() as conn:  # one ticket's saved clock and one timer go astray
        wipe = sa.text("UPDATE tickets SET clock_state = NULL WHERE id = :id")
        conn.execute(wipe, {"id": ids[0]})
        conn.execute(
            sa.update(sa.table("escalation_timers", sa.column("id"), sa.column("due_at")))
            .where(sa.column("id") == pending[0][0])
            .values(due_at=sa.bindparam("due", type_=UTCDateTime())),
            {"due": datetime(2030, 1, 1, tzinfo=UTC)},
        )
    with updates(built) as counts:
        replan(built, ids, clock.now)
    assert counts == {"tickets": 1, "escalation_timers": 1}
    assert rows_of(built, "tickets", "id") == expected_tickets
    timers = rows_of(built, "escalation_timers", "id")
    moved = [n for n, (a, b) in enumerate(zip(timers, expected_timers, strict=True)) if a != b]
    assert [timers[n][0] for n in moved] == [pending[0][0]]
    # the due time is the plan's again; the row is a new generation of it
    assert timers[moved[0]][5] == expected_timers[moved[0]][5]
    assert timers[moved[0]][7] == expected_timers[moved[0]][7] + 1


def test_a_saved_clock_spelled_otherwise_is_written_again(
    services: tuple[Services, Clock],
) -> None:
    """The stored text is compared, not its value: the same clock in another spelling (spaces)
    is written once more, as the same value."""
    built, clock = services
    ids = ticket_ids(built)
    stored = {row[0]: row for row in rows_of(built, "tickets", "id")}
    with built.engine.connect() as conn:
        text = conn.execute(
            sa.text("SELECT CAST(clock_state AS TEXT) FROM tickets WHERE id = :id"), {"id": ids[1]}
        ).scalar_one()
    respelled = json.dumps(json.loads(text), indent=1)
    with built.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE tickets SET clock_state = :state WHERE id = :id"),
            {"state": respelled, "id": ids[1]},
        )
    with updates(built) as counts:
        replan(built, ids, clock.now)
    assert counts == {"tickets": 1}
    after = {row[0]: row for row in rows_of(built, "tickets", "id")}
    assert after.keys() == stored.keys()
    for ticket_id, row in after.items():
        assert row == stored[ticket_id] or json.loads(row[-1]) == json.loads(stored[ticket_id][-1])


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 12, 2, 19, 0, tzinfo=UTC),
        datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=ZoneInfo("America/Phoenix")),
        datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        ZonedInstant(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        datetime(9999, 12, 31, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_sqlite_text_of_an_instant_is_sqlalchemys(instant: datetime) -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert sqlite_utc_text(instant) == process(instant)


def test_sqlite_text_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_utc_text(datetime(2026, 12, 2, 12, 0))
    assert sqlite_utc_text(None) is None


def test_update_rows_writes_json_text_as_it_is(db_url: str) -> None:
    """A `JsonText` value is stored as that very text (not encoded as a JSON string); other
    values of the column are encoded as usual."""
    meta = sa.MetaData()
    table = sa.Table(
        "json_rows",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("doc", sa.JSON, nullable=True),
        sa.Column("at", UTCDateTime, nullable=True),
    )
    engine = make_engine(db_url)
    text = '{"a": [1, 2.5, "x"], "b": {"c": null}}'
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [{"id": n, "doc": {}, "at": None} for n in (1, 2, 3)])
            update_rows(
                conn,
                table,
                ("id", "doc", "at"),
                [(1, JsonText(text), NOW), (2, {"d": [True]}, NOW)],
            )
            update_rows(conn, table, ("id", "doc"), [(3, JsonText("[]"))])
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.id, sa.cast(table.c.doc, sa.Text), table.c.at).order_by("id")
            ).all()
    finally:
        engine.dispose()
    assert rows[0][1] == text
    assert json.loads(rows[1][1]) == {"d": [True]}
    assert rows[2][1] == "[]"
    assert rows[0][2] == rows[1][2] == NOW
    assert rows[2][2] is None


def test_one_of_finds_ids_of_any_spelling(db_url: str) -> None:
    """`one_of` (the batch reads' `IN`, on PostgreSQL an array sent as its text) finds ids
    with quotes, backslashes, commas, braces, spaces, the word NULL and non-ASCII letters,
    and nothing else."""
    meta = sa.MetaData()
    table = sa.Table("id_rows", meta, sa.Column("id", sa.String(200), primary_key=True))
    wanted = ['a"b', "c\\d", "e,f", "NULL", "{g}", " h ", "é-ü", "i'j", "\\", '"', ""]
    others = ["a", "b", "NULL2", "c\\\\d"]
    engine = make_engine(db_url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [{"id": i} for i in wanted + others])
        with engine.connect() as conn:
            query = sa.select(table.c.id).where(one_of(table.c.id, "ids", conn.dialect))
            found = set(conn.execute(query, {"ids": wanted}).scalars())
            none = conn.execute(query, {"ids": []}).scalars().all()
    finally:
        engine.dispose()
    assert found == set(wanted)
    assert none == []
