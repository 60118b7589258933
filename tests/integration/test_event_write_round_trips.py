"""The event write's round trips: one statement locks the ticket and appends the event on
PostgreSQL, pooled connections are pinged only after sitting idle (a connection the server
ended is replaced, and an event write on it is retried), SQLite's BEGIN IMMEDIATE goes
through the driver. Behaviour (duplicates, late events, 404, 422) as with two statements."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from sla_engine.config import load_config
from sla_engine.errors import InputError, NotFound
from sla_engine.storage import db
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.storage.driver_statements import KEPT_CURSOR, DriverStatement
from sla_engine.storage.models import TicketEvent
from sla_engine.tickets import EventCreate, TicketCreate, TicketService

T0 = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def service_on(url: str) -> Iterator[tuple[TicketService, sa.Engine]]:
    upgrade(url)
    engine = make_engine(url)
    config = load_config(None, env={}, database_url=url)
    clock = lambda: T0 + timedelta(hours=1)  # noqa: E731
    yield TicketService(make_sessionmaker(engine), config, clock=clock), engine
    engine.dispose()


@pytest.fixture
def tickets(db_url: str) -> Iterator[tuple[TicketService, sa.Engine]]:
    yield from service_on(db_url)


@pytest.fixture
def pg_tickets(pg_url: str) -> Iterator[tuple[TicketService, sa.Engine]]:
    yield from service_on(pg_url)


def event(event_id: str, type_: str, minutes: float, **data: Any) -> EventCreate:
    return EventCreate(event_id, type_, T0 + timedelta(minutes=minutes), data)


def stored_events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(TicketEvent)) or 0)


def statements_of(engine: sa.Engine, work: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split())[:60])

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    return seen


def test_answers_are_those_of_the_two_statement_write(
    tickets: tuple[TicketService, sa.Engine],
) -> None:
    service, engine = tickets
    service.create_ticket(TicketCreate("T-1", "standard", T0))
    first = service.add_event("T-1", event("e1", "agent_reply", 5))
    assert first["duplicate"] is False and first["event"]["event_id"] == "e1"
    again = service.add_event("T-1", event("e1", "agent_reply", 5))
    assert again["duplicate"] is True and again["event"] == first["event"]
    # an event before created_at: a 422 naming occurred_at, nothing stored; its event_id
    # repeated, the stored event answers (a duplicate)
    with pytest.raises(InputError) as early:
        service.add_event("T-1", event("e0", "customer_reply", -5))
    assert early.value.field == "occurred_at"
    assert service.add_event("T-1", event("e1", "agent_reply", -5))["duplicate"] is True
    with pytest.raises(NotFound) as missing:
        service.add_event("T-404", event("e1", "agent_reply", 5))
    assert missing.value.field == "ticket_id"
    # a calendar change naming an unknown calendar is a 422 even under a stored event_id
    with pytest.raises(InputError) as calendar:
        service.add_event("T-1", event("e1", "calendar_changed", 6, calendar="nowhere"))
    assert calendar.value.field == "calendar"
    late = service.add_event("T-1", event("e2", "customer_reply", 1))  # before e1: replayed
    assert late["duplicate"] is False
    assert stored_events(engine) == 2


def test_postgresql_locks_the_ticket_and_appends_the_event_in_one_statement(
    pg_tickets: tuple[TicketService, sa.Engine],
) -> None:
    service, engine = pg_tickets
    service.create_ticket(TicketCreate("T-1", "standard", T0))
    seen = statements_of(engine, lambda: service.add_event("T-1", event("e1", "agent_reply", 5)))
    assert seen[0].startswith("WITH t AS (SELECT"), seen
    assert not [s for s in seen[1:] if "ticket_events" in s or "FOR UPDATE" in s], seen


def end_connections(engine: sa.Engine) -> None:
    """The server ends every other connection to this database (as a restart would)."""
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    time.sleep(0.3)


def test_an_event_write_on_a_connection_the_server_ended_is_retried(
    pg_tickets: tuple[TicketService, sa.Engine], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pooled connections in use are not pinged: the first statement finds the connection
    gone, the connection is dropped and the write replayed on a new one."""
    service, engine = pg_tickets
    monkeypatch.setattr(db, "IDLE_PING_S", 3600.0)
    service.create_ticket(TicketCreate("T-1", "standard", T0))
    other = sa.create_engine(pg_url)
    try:
        end_connections(other)
    finally:
        other.dispose()
    answer = service.add_event("T-1", event("e1", "agent_reply", 5))
    assert answer["duplicate"] is False
    assert stored_events(engine) == 1


def test_a_connection_idle_in_the_pool_is_pinged_and_replaced(
    pg_tickets: tuple[TicketService, sa.Engine], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _engine = pg_tickets
    service.create_ticket(TicketCreate("T-1", "standard", T0))
    other = sa.create_engine(pg_url)
    try:
        end_connections(other)
    finally:
        other.dispose()
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)
    assert service.get_ticket("T-1")["id"] == "T-1"  # a read: no retry of its own


def test_a_connection_in_use_is_not_pinged(
    pg_tickets: tuple[TicketService, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, engine = pg_tickets
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    monkeypatch.setattr(db, "IDLE_PING_S", 3600.0)
    service.create_ticket(TicketCreate("T-1", "standard", T0))
    service.add_event("T-1", event("e1", "agent_reply", 5))
    assert pings == []
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)
    service.get_ticket("T-1")
    assert len(pings) == 1


def test_sqlite_begin_immediate_locked_is_sqlalchemys_operational_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE runs on the driver; a database locked by another writer is still
    SQLAlchemy's OperationalError, and the writer lock is given back."""
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_S", 1)
    engine = make_engine(url)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"), engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        holder.execute("ROLLBACK")
        with engine.begin() as conn:  # the writer lock was given back
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        holder.close()
        engine.dispose()


def test_postgresql_statements_share_a_kept_cursor_until_one_fails(
    pg_tickets: tuple[TicketService, sa.Engine],
) -> None:
    """psycopg's cursor is kept per pooled connection and used by the next statement; one
    whose statement failed is closed and replaced, and the connection goes on working."""
    _service, engine = pg_tickets
    divide = DriverStatement(
        sa.text("SELECT 10 / :d").bindparams(sa.bindparam("d", type_=sa.Integer())),
        [sa.Integer()],
    )
    with engine.connect() as conn:
        with conn.begin():
            assert divide.first(conn, {"d": 2}) == (5,)
            kept = conn.connection.info[KEPT_CURSOR]
            assert divide.first(conn, {"d": 5}) == (2,)
            assert conn.connection.info[KEPT_CURSOR] is kept and not kept.closed
        with pytest.raises(sa.exc.DataError), conn.begin():
            assert divide.first(conn, {"d": 1}) == (10,)
            assert conn.connection.info[KEPT_CURSOR] is kept
            divide.first(conn, {"d": 0})
        assert KEPT_CURSOR not in conn.connection.info and kept.closed
        with conn.begin():
            assert divide.first(conn, {"d": 1}) == (10,)
            assert conn.connection.info[KEPT_CURSOR] is not kept
