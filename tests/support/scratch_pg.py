"""Fresh PostgreSQL databases for the tests, made ahead and dropped behind on a thread.

A `CREATE DATABASE` takes 0.1-0.4 s and a `DROP DATABASE` 0.2-1 s (the server checkpoints),
most of it the server's I/O: done on a thread of their own, they overlap with the tests
instead of standing between them. A test still gets a database nobody else has used, made
from the server's template like any other, and every database is dropped by the end of the
session (`close`).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import sqlalchemy as sa

from benchmarks.scratch_db import admin_engine, create_database, drop_database


class ScratchDatabases:
    """`take()` a fresh database's URL, `give_back(url)` to have it dropped."""

    def __init__(self, admin_url: str, prefix: str, ahead: int = 1) -> None:
        self._admin: sa.Engine = admin_engine(admin_url)
        self._prefix = prefix
        self._ahead = ahead
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scratch-pg")
        self._made: deque[Future[str]] = deque()
        self._dropped: list[Future[None]] = []
        self._lock = threading.Lock()

    def _make(self) -> None:
        self._made.append(self._thread.submit(create_database, self._admin, self._prefix))

    def take(self) -> str:
        with self._lock:
            if not self._made:
                self._make()
            made = self._made.popleft()
            while len(self._made) < self._ahead:
                self._make()
        return made.result()

    def give_back(self, url: str) -> None:
        with self._lock:
            self._dropped.append(self._thread.submit(drop_database, self._admin, url))

    def close(self) -> None:
        """Drop the databases made ahead and wait for every drop; raise the first failure."""
        with self._lock:
            spare, self._made = list(self._made), deque()
        for made in spare:
            if made.exception() is None:
                self.give_back(made.result())
        self._thread.shutdown(wait=True)
        self._admin.dispose()
        for dropped in self._dropped:
            dropped.result()
