"""One writer at a time on a SQLite database, handed over without SQLite's sleeps.

Every SQLite transaction of the engine is `BEGIN IMMEDIATE`, so writers queue anyway. SQLite's
own busy handler queues them by sleeping 1, 2, 5, 10... ms between tries, which under load
costs more than the transactions themselves. Here a writer first takes a thread lock (the
other threads of this process wake as soon as it is released), then an exclusive `flock` on
a file beside the database (`<db>-lock`), which other processes (`serve` workers,
`sla-engine worker`, the CLI) take too. The OS drops a killed process's `flock`. SQLite's
own locking stays underneath: a process without this lock (an older engine, the sqlite3
shell) is still kept out by `BEGIN IMMEDIATE` and the busy timeout.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy.exc import OperationalError

_FIRST_POLL_S = 0.00005
_LAST_POLL_S = 0.001


class WriterLock:
    """The database's writer lock, shared by the connections of one engine.

    Re-entrant for its holder, so `upgrade` can hold it across a migration's transactions.
    """

    def __init__(self, lock_file: Path | None, timeout_s: float) -> None:
        self.lock_file = lock_file
        self.timeout_s = timeout_s
        self._threads = threading.RLock()
        self._depth = 0  # acquisitions by the holding thread (a migration holds it across steps)
        self._fd: int | None = None
        self._probe_fd: int | None = None

    def acquire(self) -> None:
        """Wait for the lock; after `timeout_s` raise OperationalError ("database is locked")."""
        deadline = time.monotonic() + self.timeout_s
        if not self._threads.acquire(timeout=self.timeout_s):
            raise _locked(self.timeout_s)
        self._depth += 1
        if self._depth > 1:
            return
        try:
            if self.lock_file is not None:
                self._flock(deadline)
        except BaseException:
            self._depth -= 1
            self._threads.release()
            raise

    def held_elsewhere(self) -> bool:
        """Another process holds the lock at this moment (a hint: it may let go right after).

        Holders in this process are not counted: whoever waits for them waits on the thread
        lock, for one short transaction. The probe uses its own open file, so it never
        touches this process's hold.
        """
        if self.lock_file is None or self._depth:
            return False
        if self._probe_fd is None:
            self._probe_fd = _open(self.lock_file)
        try:
            fcntl.flock(self._probe_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._probe_fd, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Close the lock file (the engine is disposed of); left open while a writer holds it."""
        if not self._threads.acquire(blocking=False):
            return
        try:
            if self._probe_fd is not None:
                os.close(self._probe_fd)
                self._probe_fd = None
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None
        finally:
            self._threads.release()

    def _flock(self, deadline: float) -> None:
        if self._fd is None:
            assert self.lock_file is not None
            self._fd = _open(self.lock_file)
        fd = self._fd
        pause = _FIRST_POLL_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked(self.timeout_s) from None
                time.sleep(pause)
                pause = min(pause * 2, _LAST_POLL_S)


def _open(lock_file: Path) -> int:
    return os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def lock_file_for(database: str | None) -> Path | None:
    """The lock file beside a SQLite database file; None for URIs and in-memory databases."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return path.with_name(path.name + "-lock")


def _locked(timeout_s: float) -> OperationalError:
    return OperationalError(
        "BEGIN IMMEDIATE",
        None,
        sqlite3.OperationalError(
            f"database is locked: another writer held it for more than {timeout_s:g} s"
        ),
    )


class WriterLockedConnection(sqlite3.Connection):
    """A SQLite connection that gives the writer lock back when its transaction ends."""

    writer_lock: WriterLock | None = None
    holds_writer_lock = False

    def take_writer_lock(self) -> None:
        if self.writer_lock is not None and not self.holds_writer_lock:
            self.writer_lock.acquire()
            self.holds_writer_lock = True

    def give_writer_lock(self) -> None:
        if self.holds_writer_lock and self.writer_lock is not None:
            self.holds_writer_lock = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_writer_lock()
