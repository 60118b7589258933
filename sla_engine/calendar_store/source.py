"""The service's `CalendarSource`: stored versions, with calendar files as version 1.

`calendar(name, known_at=X)` is NAME built from the versions known at X (version 1 always; a
later one from its `created_at`, a retroactive one from its `effective_from`); without X, from
all of them. Each process caches the versions and checks the database for new ones at most
every `check_every` seconds with one cheap query (count and max id of the versions), so every
process answers with a new version within about a second. Compiled calendars are cached per
version, and chains of versions per set of versions, so a check that finds nothing new costs
one query and nothing else.

The check reads on a connection of its own that never takes SQLite's writer lock: it may run
while the calling thread is inside a write transaction (a ticket write asking for a calendar).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sla_engine.calendar_store import store
from sla_engine.calendar_store.definitions import parse_definition, read_file_definition
from sla_engine.calendar_store.store import VersionRow
from sla_engine.core.calendar import Calendar, load_calendar
from sla_engine.core.calendar_file import calendar_names, find_calendar_file, is_calendar_path
from sla_engine.errors import CalendarError

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.5
_MAX_CHAINS = 256
_LOG_EVERY_S = 10.0


def read_engine(engine: Engine) -> Engine:
    """An engine for the freshness check: on SQLite a plain one (reads in WAL mode need no
    lock and must not queue behind the writer lock); on PostgreSQL the engine itself."""
    if engine.dialect.name != "sqlite":
        return engine
    return sa.create_engine(
        engine.url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=4,
    )


def compile_version(row: VersionRow) -> Calendar:
    """One stored version on its own (the definition it stores)."""
    spec = parse_definition(
        row.definition, f"calendar {row.name!r} version {row.version}", title=row.name
    )
    return Calendar(spec, name=row.name)


def chain_versions(
    rows: Sequence[VersionRow], compile: Callable[[VersionRow], Calendar] = compile_version
) -> Calendar:
    """A calendar's versions (oldest first) as one calendar, each from its `effective_from`."""
    # A version followed by one in force from the same instant is never in force.
    kept = [
        row
        for index, row in enumerate(rows)
        if index + 1 == len(rows) or rows[index + 1].effective_from != row.effective_from
    ]
    chain = compile(kept[0])
    for row in kept[1:]:
        assert row.effective_from is not None
        chain = chain.with_version(row.effective_from, compile(row))
    return chain


class StoredCalendars:
    """Calendars from the database's versions (file calendars until they are recorded)."""

    def __init__(self, engine: Engine, *, check_every: float = CHECK_EVERY_S) -> None:
        self.engine = engine
        self.reader = read_engine(engine)
        self.check_every = check_every
        self._lock = threading.RLock()
        self._versions: dict[str, tuple[VersionRow, ...]] = {}
        self._mark: tuple[int, int] | None = None
        self._next_check = 0.0
        self._compiled: dict[int, Calendar] = {}
        self._chains: dict[tuple[int, ...], Calendar] = {}
        self._files: dict[str, tuple[tuple[str, int, int], Calendar]] = {}
        self._failing_since: float | None = None

    # -- CalendarSource --

    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        """NAME with the versions known at `known_at` (all versions when None).

        A path (a config's `calendar = "/etc/sla/desk.toml"`) is that file alone: versions
        are kept for names, so store it under a name to give it versions."""
        if is_calendar_path(name):
            return load_calendar(name)
        rows = self.rows(name)
        if not rows:
            return self._file_calendar(name)
        if known_at is not None:
            rows = tuple(r for r in rows if r.known_from is None or r.known_from <= known_at)
        key = tuple(r.id for r in rows)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chain(name, rows)
            with self._lock:
                if len(self._chains) >= _MAX_CHAINS:
                    self._chains.clear()
                self._chains[key] = chain
        return chain

    def __call__(self, name: str) -> Calendar:
        """`calendar(name)`: usable wherever a plain calendar loader is expected."""
        return self.calendar(name)

    def revision(self, name: str) -> int:
        """The latest version number of NAME (0 for a file calendar not recorded yet)."""
        rows = self.rows(name)
        return rows[-1].version if rows else 0

    # -- what the HTTP API and the CLI show --

    def rows(self, name: str) -> tuple[VersionRow, ...]:
        """NAME's stored versions, oldest first (empty when it is not stored)."""
        self._refresh_if_due()
        return self._versions.get(name, ())

    def names(self) -> list[str]:
        """Every calendar name: stored ones and those of the calendar files."""
        self._refresh_if_due()
        return sorted(set(self._versions) | set(calendar_names()))

    def is_known(self, name: str) -> bool:
        if self.rows(name):
            return True
        try:
            find_calendar_file(name)
        except CalendarError:
            return False
        return True

    def version_calendar(self, row: VersionRow) -> Calendar:
        """One version on its own (the definition it stores)."""
        calendar = self._compiled.get(row.id)
        if calendar is None:
            calendar = compile_version(row)
            with self._lock:
                self._compiled[row.id] = calendar
        return calendar

    def invalidate(self) -> None:
        """Check the database on the next call (after this process wrote a version)."""
        self._next_check = 0.0

    def close(self) -> None:
        if self.reader is not self.engine:
            self.reader.dispose()

    # -- internals --

    def _chain(self, name: str, rows: Sequence[VersionRow]) -> Calendar:
        return chain_versions(rows, self.version_calendar)

    def _refresh_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        with self._lock:
            if now < self._next_check:
                return
            try:
                with self.reader.connect() as conn:
                    mark = store.version_mark(conn)
                    if mark != self._mark:
                        rows = store.all_versions(conn)
                        self._install(rows, mark)
                    conn.rollback()
            except sa.exc.SQLAlchemyError as exc:
                self._report_failure(exc)
                if self._mark is None:
                    raise
            else:
                self._failing_since = None
            self._next_check = time.monotonic() + self.check_every

    def _install(self, rows: Sequence[VersionRow], mark: tuple[int, int]) -> None:
        by_name: dict[str, list[VersionRow]] = {}
        for row in rows:
            by_name.setdefault(row.name, []).append(row)
        if self._mark is not None:
            for name, new in by_name.items():
                if len(new) != len(self._versions.get(name, ())):
                    log.info("calendar %s: now at version %d", name, new[-1].version)
        self._versions = {name: tuple(v) for name, v in by_name.items()}
        self._mark = mark

    def _report_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None or now - self._failing_since >= _LOG_EVERY_S:
            self._failing_since = now
            log.warning(
                "calendar versions: cannot check the database (%s); using the versions "
                "already loaded",
                type(exc).__name__,
            )

    def _file_calendar(self, name: str) -> Calendar:
        """A file calendar not recorded yet, built as its stored version would be."""
        path: Path = find_calendar_file(name)
        try:
            stat = path.stat()
        except OSError:
            raise CalendarError(
                f"unknown calendar {name!r}", field="calendar", value=name
            ) from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        seen = self._files.get(name)
        if seen is not None and seen[0] == key:
            return seen[1]
        content = read_file_definition(path, name)
        calendar = Calendar(
            parse_definition(content.definition, f"calendar {name!r}", title=name), name=name
        )
        with self._lock:
            self._files[name] = (key, calendar)
        return calendar
