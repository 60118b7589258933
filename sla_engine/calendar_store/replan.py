"""Re-planning after a calendar change: stored metric rows and escalation timers follow.

Answers computed on request use the new version at once; what is stored (the metric rows
behind reports and the queue, pending escalation timers) is brought up to date here. A job
walks the tickets the version can change (a metric on the calendar, or a move away from it
since the version's start) in id order, a small batch per transaction, and commits its cursor
with each batch: a crash (even SIGKILL) loses at most the batch in flight, which the next run
redoes. Redoing is harmless, since a refresh rewrites a ticket's rows to what its log says and
timer rows are keyed by (ticket, metric, cycle, threshold). A lease keeps other processes off
a job's row while its worker is alive; a large job is split into slices of ids, a row each,
so that several processes work it at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.calendar_store import replan_store as store
from sla_engine.calendar_store.replan_store import ReplanJob

log = logging.getLogger(__name__)
BATCH = 200
SLICE = 2_000
"""Affected tickets per slice at least: a job of fewer is not split."""
SLICES = 16
"""Slices of a job at most (more than processes, so a free process takes the next one)."""
LEASE = timedelta(seconds=10)
"""Renewed with every batch (a fraction of a second): after a SIGKILL another process takes
the job up within this long."""

Refresh = Callable[[Session, str, datetime], Any]
"""`TicketService.refresh_in_session`: replay one ticket and rewrite its stored rows."""
RefreshMany = Callable[[Session, list[str], datetime], Any]
Prepare = Callable[[Connection, list[str], datetime], Any]
"""`TicketService.prepare_refresh`: read and replay a batch outside the write transaction."""
WritePrepared = Callable[[Session, Any, datetime], object]
"""`TicketService.write_refresh`: write a prepared batch (tickets changed since: again)."""
Finished = Callable[[Session, str, datetime], object]
"""Run in the transaction that finishes a job (or slice) of a calendar: what must follow
the version once every process sees it (notifications held for the calendar)."""


class _LeaseLost(Exception):
    """Another process took the job over (this one's lease ran out)."""


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Replanner:
    """Runs re-plan jobs to the end, batch by batch (see the module docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        refresh: Refresh,
        clock: Callable[[], datetime],
        *,
        reader: sa.engine.Engine | None = None,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        owner: str | None = None,
        refresh_many: RefreshMany | None = None,
        slice_size: int = SLICE,
        finished: Finished | None = None,
        prepare: Prepare | None = None,
        write_prepared: WritePrepared | None = None,
    ) -> None:
        self.sessions = sessions
        self.prepare = prepare
        self.write_prepared = write_prepared
        self.finished = finished
        self.refresh = refresh
        self.refresh_many = refresh_many
        self.clock = clock
        self.reader = reader
        self.batch = batch
        self.lease = lease
        self.slice_size = slice_size
        self.owner = owner or worker_name()
        self.stopping = threading.Event()
        """Set to stop after the batch in flight (the job resumes later from its cursor)."""

    def pending(self) -> int:
        """Unfinished jobs (read without taking SQLite's writer lock)."""
        if self.reader is None:
            with self.sessions.begin() as session:
                return store.unfinished_replans(session)
        with self.reader.connect() as conn:
            count = store.unfinished_replans(conn)
            conn.rollback()
        return count

    def run_pending(self) -> int:
        """Work every unfinished job this process can lease; returns the tickets refreshed."""
        total = 0
        if not self.pending():
            return 0
        while not self.stopping.is_set():
            job = self._claim()
            if job is None:
                return total
            total += self.run_job(job)
        return total

    def run_job(self, job: ReplanJob) -> int:
        """Work one row (a whole job or a slice) to its end; the tickets refreshed."""
        started = time.monotonic()
        if job.cursor is None:
            if job.after_ticket is None:  # the job's first (or only) row
                self._announce(job)
        else:
            log.info(
                "calendar %s version %d: resuming the re-plan after ticket %r (%d done)",
                job.calendar,
                job.version,
                job.cursor,
                job.tickets_done,
            )
        cursor, done = job.cursor, 0
        while True:
            if self.stopping.is_set():
                log.info(
                    "calendar %s version %d: re-plan paused after ticket %r (stopping)",
                    job.calendar,
                    job.version,
                    cursor,
                )
                self._release(job)
                return done
            try:
                step = self._batch(job, cursor)
            except (IntegrityError, OperationalError) as exc:
                # a race with a ticket write, a deadlock, the database away: the batch was
                # rolled back; the job keeps its cursor and is taken up again on the next run
                log.warning(
                    "calendar %s re-plan: batch after %r rolled back (%s); will retry",
                    job.calendar,
                    cursor,
                    type(exc).__name__,
                )
                return done
            if step is None:  # lease lost: another process has the job now
                return done
            count, cursor = step
            done += count
            if count == 0:
                break
        log.info(
            "calendar %s version %d: re-planned %d tickets%s in %.1f s",
            job.calendar,
            job.version,
            job.tickets_done + done,
            "" if job.whole else f" (ids after {job.after_ticket!r} to {job.through_ticket!r})",
            time.monotonic() - started,
        )
        return done

    def _release(self, job: ReplanJob) -> None:
        """Give the lease up, so another process resumes the job at once."""
        try:
            with self.sessions.begin() as session:
                store.release_replan(session, job, self.owner)
        except OperationalError:
            log.debug("lease release failed; it runs out by itself", exc_info=True)

    def _claim(self) -> ReplanJob | None:
        """Lease the next row; a whole job not started yet is first split into slices, so
        the other processes take the rest of it at once."""
        now = self.clock()
        with self.sessions.begin() as session:
            job = store.claim_replan(session, self.owner, now, now + self.lease)
        if job is None or not job.whole or job.cursor is not None:
            return job
        bounds = self._slice_bounds(job)  # read outside the write transaction
        if not bounds:
            return job
        with self.sessions.begin() as session:
            split = store.split_replan(session, job, self.owner, bounds, self.clock())
        if split is None:  # the lease was lost meanwhile
            return self._claim()
        log.info(
            "calendar %s version %d: re-plan split into %d slices",
            job.calendar,
            job.version,
            len(bounds) + 1,
        )
        return split

    def _slice_bounds(self, job: ReplanJob) -> list[str]:
        if self.reader is None:
            with self.sessions.begin() as session:
                return store.slice_bounds(session, job, self.slice_size, SLICES)
        with self.reader.connect() as conn:
            bounds = store.slice_bounds(conn, job, self.slice_size, SLICES)
            conn.rollback()
        return bounds

    def _batch(self, job: ReplanJob, cursor: str | None) -> tuple[int, str | None] | None:
        """Refresh the next batch after `cursor`; (count, new cursor), (0, _) at the end,
        None when the lease was lost (nothing of the batch is then kept)."""
        try:
            return self._batch_in_transaction(job, cursor)
        except _LeaseLost:
            return None

    def _split(self) -> bool:
        """Read and replay a batch outside the write transaction: on SQLite, whose writer
        lock every other process waits for (on PostgreSQL the batch's row locks keep other
        writers off only its own tickets)."""
        return (
            self.refresh_many is not None
            and self.prepare is not None
            and self.write_prepared is not None
            and self.reader is not None
            and self.reader.dialect.name == "sqlite"
        )

    def _batch_in_transaction(self, job: ReplanJob, cursor: str | None) -> tuple[int, str | None]:
        if self._split():
            return self._batch_split(job, cursor)
        with self.sessions.begin() as session:
            now = self.clock()
            ids = store.affected_tickets(session, job, cursor, self.batch)
            if not ids:
                self._finish(session, job, now)
                return 0, cursor
            if self.refresh_many is not None:
                self.refresh_many(session, ids, now)
            else:
                for ticket_id in ids:
                    self.refresh(session, ticket_id, now)
            self._advance(session, job, ids, now)
            return len(ids), ids[-1]

    def _batch_split(self, job: ReplanJob, cursor: str | None) -> tuple[int, str | None]:
        """`_batch_in_transaction` with the batch read, replayed and planned on the reading
        connection (no writer lock), then written in a short write transaction, which first
        checks that the batch's rows are still those read (the tickets written meanwhile are
        replayed again inside it)."""
        assert self.reader is not None and self.prepare is not None
        assert self.write_prepared is not None
        now = self.clock()
        with self.reader.connect() as conn:
            # one read transaction for the batch's reads: one snapshot, and SQLite checks once
            # (not at every statement) whether another connection's commit voids its page cache
            conn.exec_driver_sql("BEGIN")
            ids = store.affected_tickets(conn, job, cursor, self.batch)
            prepared = self.prepare(conn, ids, now) if ids else None
            conn.rollback()
        with self.sessions.begin() as session:
            if not ids:
                self._finish(session, job, now)
                return 0, cursor
            self.write_prepared(session, prepared, now)
            self._advance(session, job, ids, now)
            return len(ids), ids[-1]

    def _finish(self, session: Session, job: ReplanJob, now: datetime) -> None:
        """End the job (or slice) whose tickets are all done, in the batch's transaction."""
        if not store.finish_replan(session, job, self.owner, now):
            raise _LeaseLost
        if self.finished is not None:
            self.finished(session, job.calendar, now)

    def _advance(self, session: Session, job: ReplanJob, ids: list[str], now: datetime) -> None:
        """Move the cursor past a written batch and renew the lease; a lost lease rolls the
        batch back."""
        if not store.advance_replan(session, job, self.owner, ids[-1], len(ids), now + self.lease):
            raise _LeaseLost

    @staticmethod
    def _announce(job: ReplanJob) -> None:
        if job.retroactive:
            log.warning(
                "calendar %s version %d is retroactive (in force from %s): re-planning the "
                "tickets on it, history from then on included",
                job.calendar,
                job.version,
                job.effective_from.isoformat() if job.effective_from else None,
            )
        else:
            log.info(
                "calendar %s version %d: re-planning the open tickets on it",
                job.calendar,
                job.version,
            )
