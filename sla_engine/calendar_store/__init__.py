"""Calendars stored as versioned data in the service's database (see docs/CALENDARS.md).

- `source.py`: `StoredCalendars`, the service's CalendarSource (what was known when);
- `changes.py`: the rules for a new version, and storing it;
- `file_versions.py`: a calendar file's changed content becomes a version;
- `replan.py`: stored metric rows and escalation timers follow a change, resumably;
- `store.py`: the SQL of calendars and versions, `replan_store.py` of re-plan jobs;
  `models.py`: the tables.

`CalendarStore` bundles them for the composition root, which passes in the ticket service to
re-plan with (a `TicketRefresher`); its `start()` runs the background jobs (file check every
second, re-plan jobs as soon as one is queued).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.calendar_store.changes import CalendarChanges, NewVersion, move_held
from sla_engine.calendar_store.file_versions import FileVersions
from sla_engine.calendar_store.replan import BATCH, SLICE, Replanner
from sla_engine.calendar_store.source import StoredCalendars
from sla_engine.core.times import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
FILES_JOB = "calendar-files"
REPLAN_JOB = "calendar-replan"
CHECK_EVERY_S = 1.0
LOG_EVERY_S = 10.0
REPLAN_BATCH_ENV = "SLA_ENGINE_REPLAN_BATCH"
"""Tickets re-planned per transaction (default 200: a SQLite batch holds the writer lock)."""
REPLAN_SLICE_ENV = "SLA_ENGINE_REPLAN_SLICE"
"""Affected tickets per slice of a re-plan job at least (default 2,000; see replan.py)."""


class TicketRefresher(Protocol):
    """What re-planning needs of the ticket service (`TicketService`): replay tickets and
    rewrite their stored rows inside the job's transaction."""

    def refresh_in_session(self, session: Session, ticket_id: str, now: datetime) -> object: ...

    def refresh_many_in_session(
        self, session: Session, ticket_ids: Sequence[str], now: datetime
    ) -> object: ...


@dataclass
class CalendarStore:
    """The stored-calendar part as the composition root wires it (`replanner` is None for a
    store built without a ticket service: nothing stored to re-plan)."""

    source: StoredCalendars
    changes: CalendarChanges
    files: FileVersions
    replanner: Replanner | None = None
    _scheduler: BackgroundScheduler | None = field(default=None, repr=False)

    def put(
        self,
        name: str,
        definition: Mapping[str, Any],
        *,
        effective_from: datetime | None = None,
        retroactive: bool = False,
    ) -> NewVersion:
        """`CalendarChanges.put`, then the re-plan job wakes for a new version of a calendar
        that had one."""
        result = self.changes.put(
            name, definition, effective_from=effective_from, retroactive=retroactive
        )
        if result.version > 1:
            self.wake()
        return result

    def start(self) -> Callable[[], None]:
        """Check the calendar files every second and run queued re-plans; returns the stop."""
        from apscheduler.schedulers.background import BackgroundScheduler

        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
        scheduler = BackgroundScheduler(timezone=UTC)
        jobs: list[tuple[str, Callable[[], object]]] = [(FILES_JOB, self.files.sync)]
        if self.replanner is not None:
            self.replanner.stopping.clear()
            jobs.append((REPLAN_JOB, self.replanner.run_pending))
        for job_id, work in jobs:
            scheduler.add_job(
                _guarded(work),
                "interval",
                seconds=CHECK_EVERY_S,
                id=job_id,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
            )
        scheduler.start()
        self._scheduler = scheduler
        return self.stop

    def wake(self) -> None:
        """Run the re-plan job now (a version was just stored by this process)."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self.replanner is None:
            return
        try:
            scheduler.modify_job(REPLAN_JOB, next_run_time=utcnow())
        except Exception:  # shutting down; the interval covers it
            log.debug("wake ignored", exc_info=True)

    def stop(self) -> None:
        if self.replanner is not None:
            self.replanner.stopping.set()  # a re-plan stops after its batch in flight
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)

    def close(self) -> None:
        self.stop()
        self.source.close()


def build_calendar_store(
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    *,
    source: StoredCalendars | None = None,
    tickets: TicketRefresher | None = None,
) -> CalendarStore:
    """The store over `engine`, with the calendar files recorded (version 1 of each).

    `source` is the `StoredCalendars` the ticket service already reads (default: a new one);
    with `tickets`, a new version re-plans the stored tickets through that service."""
    source = source if source is not None else StoredCalendars(engine)
    changes = CalendarChanges(sessions, source, clock)
    files = FileVersions(changes, source.reader)
    files.sync()
    replanner = None
    if tickets is not None:
        replanner = Replanner(
            sessions,
            tickets.refresh_in_session,
            clock,
            reader=source.reader,
            refresh_many=tickets.refresh_many_in_session,
            # a batch read and replayed outside SQLite's writer lock, when the service can
            prepare=getattr(tickets, "prepare_refresh", None),
            write_prepared=getattr(tickets, "write_refresh", None),
            batch=_positive_int(os.environ.get(REPLAN_BATCH_ENV), BATCH),
            slice_size=_positive_int(os.environ.get(REPLAN_SLICE_ENV), SLICE),
            finished=lambda session, name, now: move_held(session, name, now, source),
        )
    return CalendarStore(source=source, changes=changes, files=files, replanner=replanner)


def _positive_int(text: str | None, default: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


def _guarded(work: Callable[[], object]) -> Callable[[], None]:
    """`work` that logs its failures, at most one line per 10 s (a database outage must not
    write a line a second)."""
    last_logged = [0.0]

    def run() -> None:
        try:
            work()
        except Exception as exc:
            now = time.monotonic()
            if now - last_logged[0] < LOG_EVERY_S:
                return
            last_logged[0] = now
            name = getattr(work, "__name__", work)
            if isinstance(exc, OperationalError):
                log.error("calendar job %s: database unavailable (%s); retrying", name, exc.orig)
            else:
                log.exception("calendar job %s failed; retrying in a second", name)

    return run


__all__ = [
    "CalendarChanges",
    "CalendarStore",
    "FileVersions",
    "NewVersion",
    "Replanner",
    "StoredCalendars",
    "TicketRefresher",
    "build_calendar_store",
]
