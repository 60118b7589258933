"""The SQLite writer lock: threads and processes take turns, a killed holder frees it, a
holder that never lets go ends in "database is locked" after the timeout, and the API runs a
call on the event loop unless another process holds the lock."""

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
    assert not _outsider(url).held_elsewhere()
    engine.dispose()


def test_a_failed_transaction_gives_the_lock_back(tmp_path: Path) -> None:
    url = _database(tmp_path)
    engine = make_engine(url)
    with pytest.raises(OperationalError), engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO missing VALUES (1)")
    assert not _outsider(url).held_elsewhere()
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
        lock = _outsider(url, timeout_s=0.3)
        assert lock.held_elsewhere()
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            lock.acquire()
        assert 0.25 <= time.monotonic() - began < 5
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert not lock.held_elsewhere()  # the OS dropped the dead process's flock
        lock.acquire()
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


def _outsider(url: str, timeout_s: float = 5) -> WriterLock:
    """A lock on the same file with its own open file: what another process would see."""
    return WriterLock(lock_file_for(url.removeprefix("sqlite:///")), timeout_s=timeout_s)


def _request(lock: Any) -> Any:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(writer_lock=lock)))


def test_api_calls_leave_the_loop_only_for_another_process(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "x.db-lock", timeout_s=5)
    other_process = WriterLock(tmp_path / "x.db-lock", timeout_s=5)

    def where() -> int:
        return threading.get_ident()

    async def run() -> dict[str, int]:
        seen = {"loop": threading.get_ident()}
        seen["free"] = await service_calls.call(_request(lock), where)
        holding = threading.Event()
        done = threading.Event()

        def hold_in_another_thread() -> None:
            lock.acquire()
            holding.set()
            done.wait(5)
            lock.release()

        holder = threading.Thread(target=hold_in_another_thread)
        holder.start()
        holding.wait(5)
        seen["this process"] = await service_calls.call(_request(lock), where)
        done.set()
        holder.join()
        other_process.acquire()
        try:
            seen["other process"] = await service_calls.call(_request(lock), where)
        finally:
            other_process.release()
        seen["postgres"] = await service_calls.call(_request(None), where)
        return seen

    seen = asyncio.run(run())
    assert seen["free"] == seen["loop"]
    assert seen["this process"] == seen["loop"]
    assert seen["other process"] != seen["loop"]
    assert seen["postgres"] != seen["loop"]
    lock.close()
    other_process.close()


def test_the_holder_may_take_it_again_others_wait(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "x.db-lock", timeout_s=0.2)
    lock.acquire()
    lock.acquire()  # e.g. a migration step's transaction inside `upgrade`'s hold
    lock.release()
    outsider = WriterLock(tmp_path / "x.db-lock", timeout_s=0.2)
    assert outsider.held_elsewhere()
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
    assert not outsider.held_elsewhere()
    lock.close()
    outsider.close()
