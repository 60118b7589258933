"""Engines, sessions and schema migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, foreign keys on, and every transaction opened
with `BEGIN IMMEDIATE`, so writers queue up instead of failing half-way: a claim or a credit
consumption that reads then writes is race-free. Before `BEGIN IMMEDIATE` a writer takes the
database's writer lock (`writer_lock.py`), which hands over faster than SQLite's busy handler.
PostgreSQL goes through psycopg 3; a pooled connection is pinged before use only after it sat
idle for a second (`_ping_when_idle`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from sla_engine.errors import ConfigError
from sla_engine.storage.writer_lock import WriterLock, WriterLockedConnection, lock_file_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_DRIVERNAMES = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
MODEL_MODULES = (
    "sla_engine.storage.models",
    "sla_engine.escalation.models",
    "sla_engine.credits.models",
    "sla_engine.calendar_store.models",
    "sla_engine.ingest.models",
)
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()
# Any constant 64-bit key: every engine process upgrading one database queues on it.
_MIGRATION_LOCK_KEY = 0x51A_E61E


def masked(url: str | URL) -> str:
    """The URL as text with its password hidden, safe for error messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def parse_database_url(url: str) -> URL:
    """Validate a database URL; PostgreSQL URLs are pointed at the psycopg 3 driver."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("database_url must be a non-empty URL", field="database_url", value=url)
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = sa.make_url(text)
    except ArgumentError:
        raise ConfigError(
            f"database_url {masked(url)!r} is not a database URL "
            "(expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)",
            field="database_url",
            value=masked(url),
        ) from None
    if parsed.drivername in POSTGRES_DRIVERNAMES:
        if not parsed.database:
            raise ConfigError(
                f"database_url {masked(url)!r} names no database (.../DBNAME)",
                field="database_url",
                value=masked(url),
            )
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        _check_sqlite_path(parsed, url)
        return parsed
    raise ConfigError(
        f"database_url {masked(url)!r} uses an unsupported database "
        f"{parsed.drivername!r}: use sqlite:///PATH or postgresql+psycopg://...",
        field="database_url",
        value=masked(url),
    )


def _check_sqlite_path(parsed: URL, original: str) -> None:
    path = parsed.database
    if not path or path == ":memory:":
        raise ConfigError(
            "database_url: an in-memory SQLite database cannot be shared between the "
            "engine's connections and processes; give a file path (sqlite:///PATH)",
            field="database_url",
            value=original,
        )
    if path.startswith("file:"):
        return
    if Path(path).expanduser().is_dir():
        raise ConfigError(
            f"database_url {original!r} names a folder; give the path of a database file",
            field="database_url",
            value=original,
        )
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise ConfigError(
            f"database_url {original!r}: the folder {str(folder)!r} does not exist",
            field="database_url",
            value=original,
        )


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` (SQLite file or PostgreSQL), set up for safe concurrent writers."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "factory": WriterLockedConnection},
            **kwargs,
        )
        lock = WriterLock(lock_file_for(parsed.database), SQLITE_BUSY_TIMEOUT_S)
        _configure_sqlite(engine, lock)
        _WRITER_LOCKS[engine] = lock
        return engine
    _require_psycopg(url)
    engine = sa.create_engine(parsed, **kwargs)
    _ping_when_idle(engine)
    return engine


IDLE_PING_S = 1.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for a connection that sat in the pool for `IDLE_PING_S` or
    whose driver already knows it is closed: under load every checkout paid a `SELECT 1`
    round trip (about 5% of an event's server CPU). A connection the server ended within the
    last second fails at its first statement instead; it is invalidated then (SQLAlchemy's
    disconnect handling, and `DriverStatement`'s) and the event write retries it."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: object) -> None:
        if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
            raise DisconnectionError("the connection was closed")
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and checks out another (or a new one).
            raise DisconnectionError(f"ping failed: {error}") from error


POSTGRES_EXTRA = "pip install 'sla-engine[postgres]'"


def _require_psycopg(url: str) -> None:
    """PostgreSQL's driver is the `postgres` extra: without it, say which one to install."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"database_url {masked(url)!r} is a PostgreSQL database, whose driver (psycopg) "
            f"is not installed: {POSTGRES_EXTRA}",
            field="database_url",
            value=masked(url),
        ) from None


def writer_lock_of(engine: Engine) -> WriterLock | None:
    """The SQLite engine's writer lock (None on PostgreSQL, whose writers do not queue)."""
    return _WRITER_LOCKS.get(engine)


def _configure_sqlite(engine: Engine, writer_lock: WriterLock) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # The driver must not open transactions itself: the "begin" listener does it.
        dbapi_conn.isolation_level = None
        if isinstance(dbapi_conn, WriterLockedConnection):
            dbapi_conn.writer_lock = writer_lock
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        dbapi_conn = conn.connection.dbapi_connection
        if not isinstance(dbapi_conn, WriterLockedConnection):
            _begin_immediate(conn)
            return
        dbapi_conn.take_writer_lock()
        try:
            _begin_immediate(conn)
        except BaseException:
            dbapi_conn.give_writer_lock()
            raise

    @sa.event.listens_for(engine, "engine_disposed")
    def _on_dispose(_engine: Engine) -> None:
        writer_lock.close()


def _begin_immediate(conn: Connection) -> None:
    """`BEGIN IMMEDIATE` on the driver itself: SQLAlchemy's execution layer around one fixed
    statement cost more than the statement (on each write transaction, e.g. each event).
    `before_cursor_execute` listeners do not see it; a driver error is raised as SQLAlchemy's
    (`OperationalError` for "database is locked"), as `exec_driver_sql` raised it."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    try:
        dbapi_conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise DBAPIError.instance(
            "BEGIN IMMEDIATE", (), error, sqlite3.Error, dialect=conn.dialect
        ) from error


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def load_model_modules() -> sa.MetaData:
    """Import every models module that exists and return the shared metadata."""
    for name in MODEL_MODULES:
        package = name.rsplit(".", 1)[0]
        if importlib.util.find_spec(package) is None:
            continue
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    from sla_engine.storage.models import Base

    return Base.metadata


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configured in code: works from an installed package, no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str) -> None:
    """Bring the schema to the latest revision; idempotent and safe from several processes.

    On PostgreSQL the processes queue on an advisory lock, on SQLite on the writer lock.
    """
    engine = make_engine(url, poolclass=sa.NullPool)
    # Alembic commits after each SQLite migration step: hold the writer lock across them all.
    writer_lock = writer_lock_of(engine)
    if writer_lock is not None:
        writer_lock.acquire()
    try:
        with _connected(engine, url) as conn:
            postgres = engine.dialect.name == "postgresql"
            if postgres:
                conn.execute(sa.select(sa.func.pg_advisory_lock(_MIGRATION_LOCK_KEY)))
                conn.commit()
            try:
                config = alembic_config(engine.url)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            except CommandError as exc:
                raise ConfigError(
                    f"database_url {masked(url)!r}: cannot migrate the database ({exc}); "
                    "is it from a newer sla_engine?",
                    field="database_url",
                    value=masked(url),
                ) from None
            finally:
                if postgres:
                    conn.rollback()
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(_MIGRATION_LOCK_KEY)))
                    conn.commit()
    finally:
        if writer_lock is not None:
            writer_lock.release()
        engine.dispose()


@contextmanager
def _connected(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection; a database that cannot be reached is one `ConfigError` naming it (the
    CLI's one `error:` line), not a driver traceback."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:  # refused, unknown host, no such database, not a database file
        reason = " ".join(str(exc.orig or exc).split())
        raise ConfigError(
            f"cannot reach the database {masked(url)}: {reason[:300]}",
            field="database_url",
            value=masked(url),
        ) from None
    with conn:
        yield conn


def current_revision(url: str) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with _connected(engine, url) as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
