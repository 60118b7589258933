"""Stored calendars across real processes, on SQLite and PostgreSQL.

- `serve --workers 2` and `sla-engine worker`: a version PUT over HTTP is answered by every
  server process within 2 s, and the stored rows follow (re-planned by some process);
- a calendar file edited under a running service becomes a version;
- a re-plan killed with SIGKILL midway finishes after a restart with every row right and
  nothing doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sla_engine.calendar_store.models import CalendarReplan
from sla_engine.composition import build_services
from sla_engine.config import load_config
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.storage.models import TicketMetric
from sla_engine.tickets import TicketCreate
from tests.support.bench import run_benchmark
from tests.support.calendars import ESCALATING_CONFIG, support_hours
from tests.support.server import free_port

CLI = str(Path(sys.executable).parent / "sla-engine")
CONFIG = ESCALATING_CONFIG
TEAM = """\
name = "Team"
timezone = "Europe/Berlin"

[hours]
mon = ["08:00-17:00"]
tue = ["08:00-17:00"]
wed = ["08:00-17:00"]
thu = ["08:00-17:00"]
fri = ["08:00-17:00"]
"""


def env_for(calendars: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("SLA_ENGINE_API_TOKEN", "SLA_ENGINE_DATABASE_URL", "SLA_ENGINE_CALENDARS"):
        env.pop(key, None)
    if calendars is not None:
        env["SLA_ENGINE_CALENDARS"] = str(calendars)
    env.update(extra)
    return env


@contextmanager
def processes(*commands: list[str], env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [
        subprocess.Popen(
            [CLI, *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for command in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(base: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                said = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"a process exited early: {said}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("serve did not become healthy")


def test_every_process_answers_with_a_new_version_within_2_s(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    common = ["--config", str(config), "--database-url", db_url]
    day = "2027-01-04"  # a Monday
    window = {"from": f"{day}T00:00:00-07:00", "to": f"{day}T23:00:00-07:00"}
    with processes(
        ["serve", "--port", str(port), "--workers", "2", *common],
        ["worker", *common],
        env=env_for(),
    ) as procs:
        wait_healthy(base, procs)
        for _ in range(10):  # both server processes have loaded the calendars
            with httpx.Client(base_url=base) as fresh:
                first = fresh.get("/v1/calendars/smartertools/intervals", params=window).json()
            assert first["intervals"][0]["start"] == f"{day}T08:00:00-07:00"
        answer = httpx.put(
            f"{base}/v1/calendars/smartertools",
            json={
                "definition": support_hours("09:00-10:00"),
                "effective_from": f"{day}T00:00:00-07:00",
            },
        )
        assert answer.status_code == 201, answer.text
        time.sleep(2.0)
        for _ in range(30):  # a new connection each time: either process may answer
            with httpx.Client(base_url=base) as fresh:
                got = fresh.get("/v1/calendars/smartertools/intervals", params=window).json()
            assert got["intervals"] == [
                {"start": f"{day}T09:00:00-07:00", "end": f"{day}T10:00:00-07:00"}
            ]
            with httpx.Client(base_url=base) as fresh:
                deadline = fresh.post(
                    "/v1/deadlines",
                    json={
                        "calendar": "smartertools",
                        "start": f"{day}T00:00:00-07:00",
                        "duration": "30m",
                    },
                ).json()
            assert deadline["deadline"] == f"{day}T09:30:00-07:00"


def test_a_file_edited_under_a_running_service_becomes_a_version(
    db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "calendars"
    folder.mkdir()
    (folder / "team.toml").write_text(TEAM)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with processes(
        ["serve", "--port", str(port), "--database-url", db_url], env=env_for(folder)
    ) as procs:
        wait_healthy(base, procs)
        first = httpx.get(f"{base}/v1/calendars/team/versions").json()
        assert [v["version"] for v in first] == [1]
        (folder / "team.toml").write_text(TEAM.replace("08:00-17:00", "08:00-13:00"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            versions = httpx.get(f"{base}/v1/calendars/team/versions").json()
            if len(versions) == 2:
                break
            time.sleep(0.2)
        assert [(v["version"], v["origin"]) for v in versions] == [(1, "file"), (2, "file")]
        assert versions[1]["definition"]["hours"]["mon"] == ["08:00-13:00"]
        assert versions[1]["effective_from"] is not None
    stderr = procs[0].stderr.read().decode() if procs[0].stderr else ""
    assert "team.toml changed" in stderr
    assert str(folder) not in stderr  # the log names the calendar, not the path


# --- a re-plan killed midway ------------------------------------------------------------------

TICKETS = 1500


def _fixture(db_url: str, config: Path) -> tuple[Any, list[str]]:
    """Open tickets on smartertools (created in the last minutes) and a version effective now
    whose re-plan is queued; nothing is re-planned in this process."""
    services = build_services(load_config(config, env={}, database_url=db_url))
    now = datetime.now(UTC)
    ids = [f"T-{i:05d}" for i in range(TICKETS)]
    with services.sessionmaker.begin() as session:
        for index, ticket_id in enumerate(ids):
            created = now - timedelta(seconds=index)
            services.tickets.create_in_session(
                session, TicketCreate(id=ticket_id, policy="standard", created_at=created), now
            )
    store = services.calendar_store
    assert store is not None
    store.changes.put("smartertools", support_hours("08:00-13:00"))
    return services, ids


def _job(services: Any) -> tuple[int, Any, Any]:
    """The job's progress, read without taking SQLite's writer lock (polling must not starve
    the worker)."""
    with services.calendar_store.source.reader.connect() as session:
        row = session.execute(
            sa.select(
                CalendarReplan.tickets_done, CalendarReplan.cursor, CalendarReplan.finished_at
            ).where(CalendarReplan.calendar == "smartertools")
        ).one()
    return int(row[0]), row[1], row[2]


def test_a_replan_killed_midway_finishes_after_restart_with_nothing_doubled(
    db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    services, ids = _fixture(db_url, config)
    try:
        worker = ["worker", "--config", str(config), "--database-url", db_url]
        env = env_for(SLA_ENGINE_REPLAN_BATCH="20")
        with processes(worker, env=env) as procs:
            deadline = time.monotonic() + 120
            while True:
                done, cursor, finished = _job(services)
                if done >= 100 or finished is not None:
                    break
                assert time.monotonic() < deadline, "the re-plan did not start"
                time.sleep(0.1)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
        done, cursor, finished = _job(services)
        assert finished is None, "the job ended before the kill: make the fixture bigger"
        assert 0 < done < TICKETS and cursor is not None
        with processes(worker, env=env):
            deadline = time.monotonic() + 120
            while _job(services)[2] is None:
                assert time.monotonic() < deadline, "the re-plan did not finish after restart"
                time.sleep(0.2)
        done, cursor, _ = _job(services)
        assert cursor == ids[-1]
        assert done >= TICKETS  # the batch in flight at the kill may be done twice, harmlessly
        _check_rows(services, ids)
    finally:
        services.close()


def _slices(services: Any) -> list[tuple[int, Any, Any, Any, Any]]:
    """(tickets_done, cursor, after, through, finished_at) of each row of the job."""
    r = CalendarReplan
    with services.calendar_store.source.reader.connect() as conn:
        rows = conn.execute(
            sa.select(r.tickets_done, r.cursor, r.after_ticket, r.through_ticket, r.finished_at)
            .where(r.calendar == "smartertools")
            .order_by(r.id)
        ).all()
    return [(int(row[0]), *row[1:]) for row in rows]


def test_a_sliced_replan_survives_a_killed_worker_with_nothing_doubled(
    db_url: str, tmp_path: Path
) -> None:
    """Two workers share the job's slices; one is SIGKILLed midway: the other finishes every
    slice, the killed one's after its lease runs out, each ticket right and none doubled."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    services, ids = _fixture(db_url, config)
    try:
        worker = ["worker", "--config", str(config), "--database-url", db_url]
        env = env_for(SLA_ENGINE_REPLAN_BATCH="20", SLA_ENGINE_REPLAN_SLICE="300")
        with processes(worker, worker, env=env) as procs:
            deadline = time.monotonic() + 120
            while True:
                rows = _slices(services)
                started = [row for row in rows if row[0] > 0 and row[4] is None]
                if len(started) >= 2 or any(row[4] is not None for row in rows):
                    break
                assert time.monotonic() < deadline, "the re-plan did not start in two workers"
                time.sleep(0.05)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            assert len(rows) == TICKETS // 300
            deadline = time.monotonic() + 180
            while any(row[4] is None for row in _slices(services)):
                assert time.monotonic() < deadline, "the slices did not all finish"
                time.sleep(0.2)
        rows = _slices(services)
        bounds = [row[3] for row in rows]
        assert [row[2] for row in rows] == [None, *bounds[:-1]]
        assert bounds[-1] is None
        for done, cursor, after, through, _ in rows:
            inside = [
                t for t in ids if (after is None or t > after) and (through is None or t <= through)
            ]
            assert cursor == inside[-1]
            assert done >= len(inside)  # the batch in flight at the kill may be done twice
        _check_rows(services, ids)
    finally:
        services.close()


def _check_rows(services: Any, ids: list[str]) -> None:
    """Every ticket's stored breach_at and pending timers are those of a fresh replay."""
    with services.sessionmaker.begin() as session:
        stored = dict(
            session.execute(
                sa.select(TicketMetric.ticket_id, TicketMetric.breach_at).where(
                    TicketMetric.metric == "first_response"
                )
            ).all()
        )
        timers = session.execute(
            sa.select(
                EscalationTimer.ticket_id,
                EscalationTimer.threshold,
                EscalationTimer.status,
                EscalationTimer.due_at,
            )
        ).all()
        deliveries = session.execute(
            sa.select(sa.func.count()).select_from(EscalationDelivery)
        ).scalar_one()
    assert deliveries == 0
    by_ticket: dict[str, list[tuple[str, str, datetime]]] = {}
    for ticket_id, threshold, status, due in timers:
        by_ticket.setdefault(ticket_id, []).append((threshold, status, due))
    now = datetime.now(UTC)
    for ticket_id in ids:
        fresh = services.tickets.sla(ticket_id, now).metrics["first_response"]
        assert stored[ticket_id] == fresh.breach_at, ticket_id
        rows = by_ticket[ticket_id]
        assert sorted(t for t, _, _ in rows) == ["100%", "50%"], (ticket_id, rows)
        hundred = [due for t, status, due in rows if t == "100%" and status == "pending"]
        assert hundred == [fresh.breach_at], ticket_id


def test_the_replan_benchmark_runs_and_checks_its_sample() -> None:
    """Smoke run of benchmarks/calendar_replan.py (no timing judged)."""
    run = run_benchmark(
        "calendar_replan.py", "--quick", "--only", "sqlite", "--no-lag", timeout=600, env=env_for()
    )
    assert "tickets/s" in run.stdout and "sample wrong: 0" in run.stdout
