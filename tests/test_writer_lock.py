"""The SQLite writer lock: threads and processes take turns, a killed holder frees it, a
holder that never lets go ends in "database is locked" after the timeout, and the API runs a
call on the event loop only while the lock is free."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from sla_engine.api import service_calls
from sla_engine.storage.db import make_engine, writer_lock_of
from sla_engine.storage.writer_lock import WriterLock, lock_file_for

HOLDER = textwrap.dedent(
    """
    import sys, time
    from sla_engine.storage.db import make_engine
    engine = make_engine(sys.argv[1])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        print("holding", flush=True)
        time.sleep(600)
    """
)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    return url


def test_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert lock_file_for(str(tmp_path / "a.db")) == tmp_path / "a.db-lock"
    assert lock_file_for(":memory:") is None
    assert lock_file_for("file:x?mode=memory") is None
    assert writer_lock_of(make_engine("postgresql+psycopg://u@h/db")) is None


def test_threads_take_turns_and_every_write_lands(tmp_path: Path) -> None:
    url = _database(tmp_path)
    engine = make_engine(url, pool_size=8)
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def write(n: int) -> None:
        nonlocal inside, most_inside
        for i in range(50):
            with engine.begin() as conn:
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                conn.exec_driver_sql(f"INSERT INTO t VALUES ({n * 1000 + i})")
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 300
    assert most_inside == 1
    lock = writer_lock_of(engine)
    assert lock is not None and lock.is_free()
    engine.dispose()


def test_a_failed_transaction_gives_the_lock_back(tmp_path: Path) -> None:
    engine = make_engine(_database(tmp_path))
    with pytest.raises(OperationalError), engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO missing VALUES (1)")
    lock = writer_lock_of(engine)
    assert lock is not None and lock.is_free()
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    engine.dispose()


def test_other_process_holds_then_is_killed(tmp_path: Path) -> None:
    url = _database(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        lock = WriterLock(lock_file_for(url.removeprefix("sqlite:///")), timeout_s=0.3)
        assert not lock.is_free()
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            lock.acquire()
        assert 0.25 <= time.monotonic() - began < 5
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        lock.acquire()  # the OS dropped the dead process's flock
        lock.release()
        lock.close()
        engine = make_engine(url)
        with engine.begin() as conn:  # and SQLite's own lock went with the process
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
            rows = conn.execute(sa.text("SELECT x FROM t")).scalars().all()
        assert rows == [3]  # the killed holder's insert never committed
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _request(lock: Any) -> Any:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(writer_lock=lock)))


def test_api_calls_run_inline_only_while_the_lock_is_free(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "x.db-lock", timeout_s=5)

    def where() -> int:
        return threading.get_ident()

    async def run() -> tuple[int, int, int, int]:
        loop_thread = threading.get_ident()
        free = await service_calls.call(_request(lock), where)
        lock.acquire()
        try:
            held = await service_calls.call(_request(lock), where)
        finally:
            lock.release()
        postgres = await service_calls.call(_request(None), where)
        return loop_thread, free, held, postgres

    loop_thread, free, held, postgres = asyncio.run(run())
    assert free == loop_thread
    assert held != loop_thread
    assert postgres != loop_thread
    lock.close()


def test_the_holder_may_take_it_again_others_wait(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "x.db-lock", timeout_s=0.2)
    lock.acquire()
    lock.acquire()  # e.g. a migration step's transaction inside `upgrade`'s hold
    lock.release()
    assert not lock.is_free()
    failed: list[BaseException] = []

    def other() -> None:
        try:
            lock.acquire()
        except OperationalError as exc:
            failed.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(failed) == 1
    lock.release()
    assert lock.is_free()
    lock.close()
