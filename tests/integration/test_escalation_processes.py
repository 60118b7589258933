"""Real `sla-engine worker` processes against one database and a receiver on 127.0.0.1:
timing, exactly-once under racing workers, SIGKILL at each fault point, a stale worker.

Timers are written straight into the timer table (the tables are the interface between
ticket writes and workers), due a moment after the workers are up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import Destination
from sla_engine.core.policies import default_policies
from sla_engine.escalation import EscalationEngine, EscalationSettings
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CLI = str(Path(sys.executable).with_name("sla-engine"))


class Workers:
    """Starts worker processes and reaps them at the end of the test."""

    def __init__(self, url: str, config: Path) -> None:
        self.url = url
        self.config = config
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stderr: dict[int, tuple[threading.Event, list[str]]] = {}

    def start(
        self,
        *,
        fault: str | None = None,
        lease_s: float = 2.0,
        backoff_s: float = 1.0,
        wait: bool = True,
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SLA_ENGINE_ESCALATION_POLL_S": "0.1",
            "SLA_ENGINE_ESCALATION_LEASE_S": str(lease_s),
            "SLA_ENGINE_ESCALATION_BACKOFF_BASE_S": str(backoff_s),
            "SLA_ENGINE_ESCALATION_SEND_TIMEOUT_S": "5",
        }
        env.pop("SLA_ENGINE_FAULT", None)
        if fault:
            env["SLA_ENGINE_FAULT"] = fault
        proc = subprocess.Popen(
            [CLI, "worker", "--config", str(self.config), "--database-url", self.url],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        self.stderr[proc.pid] = self._drain(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    @staticmethod
    def _drain(proc: subprocess.Popen[bytes]) -> tuple[threading.Event, list[str]]:
        """Read the worker's log lines as they come (a full pipe would stall the worker);
        the event is set by the line saying it is running."""
        ready, lines = threading.Event(), []

        def read() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                lines.append(raw.decode(errors="replace"))
                if "running" in lines[-1]:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        return ready, lines

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        ready, lines = self.stderr[proc.pid]
        assert ready.wait(timeout), "worker not running; its log:\n" + "".join(lines)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(db_url: str, receiver, tmp_path: Path) -> Iterator[Workers]:
    _rec, base = receiver
    config = tmp_path / "sla.toml"
    config.write_text(f"""
[[destinations]]
name = "oncall"
type = "webhook"
url = "{base}/hook"
secret = "{SECRET}"
""")
    w = Workers(db_url, config)
    yield w
    w.stop_all()


def seed(sessions: sessionmaker[Session], count: int, due_at: datetime, prefix: str = "T") -> None:
    with sessions.begin() as s:
        for i in range(count):
            s.add(
                EscalationTimer(
                    ticket_id=f"{prefix}-{i}",
                    metric="first_response",
                    cycle=1,
                    threshold="100%",
                    due_at=due_at,
                    status="pending",
                    generation=1,
                    policy="standard",
                    calendar="24x7",
                    breach_at=due_at,
                    targets=json.dumps([{"to": "oncall"}]),
                    created_at=due_at,
                    updated_at=due_at,
                )
            )


def statuses(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions.begin() as s:
        return {d.id: d.status for d in s.query(EscalationDelivery)}


def wait_until(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def all_sent(sessions: sessionmaker[Session], count: int) -> bool:
    found = statuses(sessions)
    return len(found) == count and set(found.values()) == {"sent"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_escalation_fires_within_one_second_of_its_due_time(sessions, workers, receiver) -> None:
    rec, _base = receiver
    workers.start()
    due = datetime.now(UTC) + timedelta(seconds=1)
    seed(sessions, 20, due)
    hits = rec.wait_for(20, timeout=10)
    lags = [h.at - due.timestamp() for h in hits]
    assert len(hits) == 20
    assert min(lags) >= 0
    assert max(lags) <= 1.0, lags


def test_racing_workers_deliver_each_escalation_exactly_once(sessions, workers, receiver) -> None:
    rec, _base = receiver
    for proc in [workers.start(lease_s=30, wait=False) for _ in range(3)]:
        workers.wait_ready(proc)
    seed(sessions, 200, datetime.now(UTC) + timedelta(seconds=0.5))
    assert wait_until(lambda: all_sent(sessions, 200), timeout=30)
    ids = rec.ids()
    assert len(ids) == 200
    assert set(ids.values()) == {1}
    assert set(ids) == set(statuses(sessions))


def restarted_engine(sessions: sessionmaker[Session], base: str) -> EscalationEngine:
    """The engine a restarted worker runs (same code as `sla-engine worker`), in-process."""
    return EscalationEngine(
        sessions,
        destinations={"oncall": Destination("oncall", "webhook", f"{base}/hook", secret=SECRET)},
        policies=default_policies(),
        settings=EscalationSettings(poll_s=0.1, lease_s=1, backoff_base_s=600),
    )


def run_until(
    engine: EscalationEngine,
    predicate,
    timeout: float = 20.0,  # type: ignore[no-untyped-def]
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        engine.tick()
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.mark.parametrize("fault", ["after_claim", "after_send", "after_commit"])
def test_sigkill_at_a_fault_point_loses_nothing(sessions, workers, receiver, fault) -> None:
    rec, base = receiver
    victim = workers.start(fault=fault, lease_s=1)
    seed(sessions, 10, datetime.now(UTC))
    assert victim.wait(timeout=20) == -signal.SIGKILL
    before = rec.ids()
    engine = restarted_engine(sessions, base)
    assert run_until(engine, lambda: all_sent(sessions, 10))
    engine.stop()
    ids = rec.ids()
    rows = statuses(sessions)
    assert set(ids) == set(rows)
    if fault == "after_send":
        assert before and set(before) <= set(rows)
        assert max(ids.values()) == 2, "a resend after the crash carries the same webhook-id"
    else:
        assert set(ids.values()) == {1}
    if fault == "after_claim":
        assert not before


def test_a_stale_worker_cannot_complete_a_reclaimed_delivery(sessions, workers, receiver) -> None:
    rec, base = receiver
    rec.script["/hook"] = [(200, {}, 1.0), 500]
    stale = workers.start(lease_s=1, backoff_s=600)
    seed(sessions, 1, datetime.now(UTC))
    assert rec.wait_for(1, timeout=10)
    os.kill(stale.pid, signal.SIGSTOP)
    other = restarted_engine(sessions, base)
    assert run_until(other, lambda: set(statuses(sessions).values()) == {"queued"})
    other.stop()
    assert len(rec.received) == 2
    os.kill(stale.pid, signal.SIGCONT)
    time.sleep(1.5)
    with sessions.begin() as s:
        row = s.query(EscalationDelivery).one()
        assert (row.status, row.attempts, row.last_status) == ("queued", 2, 500)
        assert row.sent_at is None
    ids = rec.ids()
    assert list(ids.values()) == [2]
