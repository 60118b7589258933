"""Storage on both databases: engines, migrations, the UTC column type, the breach index."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from sla_engine.errors import ConfigError
from sla_engine.storage.db import (
    current_revision,
    head_revision,
    load_model_modules,
    make_engine,
    make_sessionmaker,
    parse_database_url,
    upgrade,
)
from sla_engine.storage.models import Ticket, TicketMetric, breaching_query

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def migrated(db_url: str) -> str:
    upgrade(db_url)
    return db_url


def make_ticket(ticket_id: str, created_at: datetime = T0) -> Ticket:
    return Ticket(
        id=ticket_id,
        policy="standard",
        current_policy="standard",
        created_at=created_at,
        status="open",
        received_at=created_at,
    )


def make_metric(ticket_id: str, breach_at: datetime | None, status: str = "active") -> TicketMetric:
    return TicketMetric(
        ticket_id=ticket_id,
        metric="first_response",
        cycle=1,
        status=status,
        policy="standard",
        calendar="smartertools",
        started_at=T0,
        target_at=None,
        breach_at=breach_at,
        stopped_at=None,
        business_elapsed_s=0.0,
        updated_at=T0,
    )


# --- URLs and engines ----------------------------------------------------------------------


def test_postgres_urls_are_pointed_at_psycopg3() -> None:
    for url in (
        "postgres://u:p@127.0.0.1/db",
        "postgresql://u:p@127.0.0.1/db",
        "postgresql+psycopg://u:p@127.0.0.1/db",
    ):
        assert parse_database_url(url).drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:s3cret@127.0.0.1/sla",
        "not a url at all",
        "postgresql+asyncpg://root:s3cret@127.0.0.1/sla",
        "",
        "sqlite://",
        "sqlite:////no/such/folder/here/sla.db",
        "postgresql://root:s3cret@127.0.0.1",
    ],
)
def test_unusable_database_url_is_a_config_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    assert caught.value.field == "database_url"
    assert "s3cret" not in caught.value.message
    assert "s3cret" not in str(caught.value.value)


def test_sqlite_engine_settings(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_sqlite_transactions_serialise_read_then_write(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: concurrent read-modify-write transactions never lose an update."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        session.add(make_ticket("counter"))

    def bump() -> None:
        for _ in range(10):
            with maker.begin() as session:
                ticket = session.get_one(Ticket, "counter")
                ticket.status = str(int(ticket.status) + 1) if ticket.status.isdigit() else "1"

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with maker() as session:
        assert session.get_one(Ticket, "counter").status == "40"
    engine.dispose()


# --- migrations ----------------------------------------------------------------------------


def test_migrations_apply_from_empty_and_are_idempotent(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    engine = make_engine(db_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"tickets", "ticket_events", "ticket_metrics", "alembic_version"} <= tables


def test_migrated_schema_matches_the_models(migrated: str) -> None:
    """Autogenerate finds nothing to add, drop or alter: migrations and models agree."""
    metadata = load_model_modules()
    engine = make_engine(migrated)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_a_database_from_a_newer_version_is_refused_clearly(migrated: str) -> None:
    engine = make_engine(migrated)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError) as caught:
        upgrade(migrated)
    assert caught.value.field == "database_url"
    assert "9999" in caught.value.message


def test_several_processes_upgrading_at_once(db_url: str) -> None:
    script = "import sys; from sla_engine.storage.db import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, db_url], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [proc.communicate(timeout=120)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert current_revision(db_url) == head_revision()


def test_migrations_need_no_alembic_ini_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    upgrade(url)
    assert current_revision(url) == head_revision()


# --- the UTC column type -------------------------------------------------------------------


def test_utc_datetime_round_trips_microseconds_and_offsets(migrated: str) -> None:
    engine = make_engine(migrated)
    maker = make_sessionmaker(engine)
    local = datetime(2026, 3, 8, 2, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with maker.begin() as session:
        session.add(make_ticket("T-utc", created_at=local))
    with maker() as session:
        stored = session.get_one(Ticket, "T-utc")
        assert stored.created_at == local
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.created_at.microsecond == 123456
        assert stored.created_at.isoformat() == "2026-03-07T21:00:15.123456+00:00"
    engine.dispose()


def test_utc_datetime_refuses_naive_values(migrated: str) -> None:
    engine = make_engine(migrated)
    maker = make_sessionmaker(engine)
    with pytest.raises(sa.exc.StatementError), maker.begin() as session:
        session.add(make_ticket("T-naive", created_at=datetime(2026, 1, 1, 9, 0)))
        session.flush()
    with maker() as session:
        assert session.get(Ticket, "T-naive") is None
    engine.dispose()


# --- what breaches next --------------------------------------------------------------------


def _seed_metrics(session: Session, count: int) -> None:
    for i in range(count):
        session.add(make_ticket(f"T-{i}"))
    session.flush()
    for i in range(count):
        status = "achieved" if i % 5 == 0 else "active"
        session.add(make_metric(f"T-{i}", T0 + timedelta(minutes=7 * i), status))


def test_breaching_query_returns_running_metrics_in_the_window(migrated: str) -> None:
    engine = make_engine(migrated)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        _seed_metrics(session, 40)
    with maker() as session:
        due = list(
            session.scalars(breaching_query(T0 + timedelta(hours=1), T0 + timedelta(hours=2)))
        )
    in_window = range(9, 18)  # 7-minute steps from T0: 63 .. 119 minutes
    expected = [f"T-{i}" for i in in_window if i % 5]
    assert [m.ticket_id for m in due] == expected
    assert [m.breach_at for m in due] == [T0 + timedelta(minutes=7 * i) for i in in_window if i % 5]
    engine.dispose()


def test_breaching_query_is_served_by_the_breach_index(migrated: str) -> None:
    engine = make_engine(migrated)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        _seed_metrics(session, 40)
    query = breaching_query(T0, T0 + timedelta(hours=1))
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            )
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    engine.dispose()
    assert "ix_ticket_metrics_status_breach_at" in plan, plan
    assert "SCAN ticket_metrics" not in plan and "Seq Scan" not in plan, plan
