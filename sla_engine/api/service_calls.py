"""Running the services' blocking calls from async routes.

On SQLite the process's writers take turns anyway (one writer lock). Handing each ticket
write to a worker thread then costs more than the write: the thread hop and the hand-over of
the GIL between the event loop and the worker took about a third of the server's CPU per
event (measured: 1.25 ms against 0.90 ms per event, 860 against 1,160 events/s). So while
the lock is free, a SQLite call runs on the event loop itself; when another writer holds it,
the call waits in the thread pool instead, so the loop never sits behind a long transaction.
On PostgreSQL, where writers of different tickets run in parallel, calls always go to the
thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from sla_engine.storage.db import writer_lock_of

T = TypeVar("T")


def install(app: Any, engine: Any) -> None:
    app.state.writer_lock = writer_lock_of(engine)


async def call(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, inline while the SQLite writer lock is free, else in the thread pool."""
    lock = request.app.state.writer_lock
    if lock is not None and lock.is_free():
        return fn(*args)
    return await run_in_threadpool(fn, *args)
