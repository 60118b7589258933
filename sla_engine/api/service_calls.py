"""Running the services' blocking calls from async routes.

On SQLite the writers take turns anyway (one writer lock). Handing each ticket write to a
worker thread then costs more than the write: the thread hop and the hand-over of the GIL
between the event loop and the worker took about a third of the server's CPU per event
(measured: 1.25 against 0.90 ms per event, 860 against 1,160 events/s). So a SQLite call runs
on the event loop itself; when a writer of this process holds the lock, the loop waits for
that one short transaction. Only when another process holds the lock (which may be for
longer) does the call wait in the thread pool. Deciding by "is the lock free at all" instead
sent most calls to the pool under load: a pooled call holds the lock, so the next one is
pooled too (measured: three quarters of the calls, 940 events/s). On PostgreSQL, where
writers of different tickets run in parallel, calls always go to the thread pool.

The pool is a plain `ThreadPoolExecutor` reached with `loop.run_in_executor`, not
Starlette's `run_in_threadpool` (anyio's worker threads and capacity limiter): the same
number of threads at most, a cheaper hop (a call of 0.1 ms of Python from 4 concurrent
tasks: 66 against 88 us of CPU per call).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from fastapi import FastAPI, Request
from sqlalchemy.engine import Engine

from sla_engine.storage.db import writer_lock_of

P = ParamSpec("P")
T = TypeVar("T")
POOL_THREADS = 40
"""As many as anyio's default capacity limiter let `run_in_threadpool` use."""
_POOL = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="service-call")


def install(app: FastAPI, engine: Engine) -> None:
    app.state.writer_lock = writer_lock_of(engine)


async def call(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args)`: inline on SQLite unless another process holds the writer lock, else in
    the thread pool (with the caller's context variables, as `run_in_threadpool` ran it)."""
    lock = request.app.state.writer_lock
    if lock is not None and not lock.held_elsewhere():
        return fn(*args, **kwargs)
    job = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, job)
