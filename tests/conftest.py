"""Shared fixtures: real databases (SQLite file, fresh PostgreSQL database) and free ports.

PostgreSQL tests run against 127.0.0.1:5432 (`SLA_ENGINE_TEST_PG_ADMIN` overrides the admin
URL). Each test gets a database of its own, dropped afterwards (made ahead and dropped behind
the tests on a thread: `tests/support/scratch_pg.py`). Locally, with no server
reachable, they skip and say so; in CI (`CI` set) an unreachable server is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.scratch_db import PG_ADMIN_URL
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from tests.support.escalation_receiver import Receiver
from tests.support.scratch_pg import ScratchDatabases
from tests.support.server import serve_app

_pg_ok: bool | None = None


def _pg_reachable() -> bool:
    global _pg_ok
    if _pg_ok is None:
        try:
            eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as conn:
                conn.execute(sa.text("select 1"))
            eng.dispose()
            _pg_ok = True
        except Exception:
            _pg_ok = False
    return _pg_ok


def _require_pg() -> None:
    if _pg_reachable():
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must run these tests)")
    pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}; skipped locally")


_scratch: ScratchDatabases | None = None


@contextmanager
def pg_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped afterwards (any scope)."""
    global _scratch
    _require_pg()
    if _scratch is None:
        _scratch = ScratchDatabases(PG_ADMIN_URL, "sla_test")
    url = _scratch.take()
    try:
        yield url
    finally:
        _scratch.give_back(url)


def pytest_sessionfinish() -> None:
    """Every scratch database dropped before the run ends (their drops run behind the tests)."""
    if _scratch is not None:
        _scratch.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """URL of a fresh SQLite file database."""
    return f"sqlite:///{tmp_path / 'sla-engine.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Both databases: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def calendar_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder of calendar files, the one the services read (`SLA_ENGINE_CALENDARS`)."""
    folder = tmp_path / "team-calendars"
    folder.mkdir()
    monkeypatch.setenv("SLA_ENGINE_CALENDARS", str(folder))
    return folder


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A sessionmaker on a migrated database (both databases, via `db_url`)."""
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """A recording webhook receiver under a real uvicorn server: (receiver, base URL)."""
    rec = Receiver()
    with serve_app(rec) as base:
        yield rec, base


PROCESS_MODULES = {
    "test_cli_calendar",
    "test_calendar_store_processes",
    "test_cli_service",
    "test_operability",
    "test_credits_cli",
    "test_escalation_processes",
    "test_writer_lock",
    "test_benchmarks_smoke",
    "test_api_benchmark_smoke",
    "test_import_cli",
    "test_import_benchmark_smoke",
    "test_batch_benchmark_smoke",
    "test_ticket_queue_benchmark",
    "test_ticket_clock_kill",
    "test_cli_config",
    "test_dashboard",
    "test_dashboard_screenshots",
    "test_wheel_install",
    "test_event_cost_smoke",
}


# Under pytest-xdist (`make test XDIST="-n 2 --dist loadgroup"`), the tests of an
# integration module stay together on one worker, so a module-scoped server or seeded
# database is made once, not once per worker. The modules that time real processes
# (SIGKILL, a scheduler's delivery, lock hand-over) share one group: they run one after
# another on one worker, never two of them against each other for the 2 cores.
TIMED_PROCESS_GROUP = "timed-processes"
TIMED_PROCESS_MODULES = {
    "test_ticket_clock_kill",
    "test_escalation_processes",
    "test_calendar_store_processes",
    "test_writer_lock",
}
# Headless Chromium is heavy: one browser at a time.
BROWSER_GROUP = "chromium"
BROWSER_MODULES = {"test_dashboard", "test_dashboard_screenshots"}
# The schemathesis cases are generated once per process and sent by both modules
# (tests/support/schema_cases.py): one worker, one generation.
SCHEMA_GROUP = "schemathesis"
SCHEMA_MODULES = {"test_api_contract", "test_api_fuzz"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: integration tests by module (or shared group), unit
    tests none (they spread one by one over the workers)."""
    if "unit" in item.path.parts:
        return None
    stem = item.path.stem
    if stem in TIMED_PROCESS_MODULES:
        return TIMED_PROCESS_GROUP
    if stem in BROWSER_MODULES:
        return BROWSER_GROUP
    if stem in SCHEMA_MODULES:
        return SCHEMA_GROUP
    return stem


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives and what it needs (`-m "not pg"`, `-m unit`, ...)."""
    for item in items:
        parts = item.path.parts
        item.add_marker("unit" if "unit" in parts else "integration")
        if item.path.stem in PROCESS_MODULES:
            item.add_marker("process")
            item.add_marker("slow")
        group = xdist_group_of(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in map(str, callspec.params.values()):
            item.add_marker("pg")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that configures logging in this process (as `serve` does at start) must not
    leave its stderr handler and INFO level to print into the next test's captured stderr."""
    import logging

    from sla_engine.logging_setup import StderrHandler

    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    root.setLevel(level)
