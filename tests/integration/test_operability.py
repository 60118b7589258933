"""Operating the service, as real processes: logs, start-up failures, readiness, metrics.

`sla-engine serve` and `sla-engine worker` run as subprocesses with their output in files;
databases are made unreachable from the outside (a PostgreSQL database refusing connections,
a table locked) while they run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.escalation_receiver import Receiver
from tests.support.server import free_port

CLI = str(Path(sys.executable).with_name("sla-engine"))
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: "
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLA_ENGINE_", "PROMETHEUS"))}
    return {**env, **extra}


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    base: str = ""

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Process:
    n = len(list(tmp_path.glob("out-*")))
    out, err = tmp_path / f"out-{n}.txt", tmp_path / f"err-{n}.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([CLI, *args], stdout=o, stderr=e, env=env or clean_env())
    return Process(proc, out, err)


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


@contextmanager
def serving(
    tmp_path: Path, url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[Process]:
    """`sla-engine serve` on a free port, once it has printed "serving on"."""
    port = free_port()
    served = start(tmp_path, "serve", "--port", str(port), "--database-url", url, *args, env=env)
    served.base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: "serving on" in served.stdout() or served.proc.poll() is not None,
            what="serving on",
        )
        assert served.proc.poll() is None, served.stderr()
        yield served
    finally:
        served.stop()


# -- start-up -----------------------------------------------------------------------------


def test_serving_on_is_printed_once_the_port_accepts(sqlite_url: str, tmp_path: Path) -> None:
    with serving(tmp_path, sqlite_url) as served:
        # No retry: the port listens before the line is printed.
        answer = httpx.get(f"{served.base}/healthz", timeout=30)
        assert answer.status_code == 200
        assert served.stdout().count("serving on") == 1
    assert served.proc.returncode == 0


def test_a_port_in_use_is_one_error_line_and_exit_2(sqlite_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CLI, "serve", "--port", str(port), "--database-url", sqlite_url],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
    assert result.returncode == 2, result
    assert "serving on" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --port"), result.stderr
    assert "already in use" in lines[0]


@pytest.mark.parametrize("command", ["serve", "worker", "db upgrade"])
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
        "sqlite:///{tmp}/garbage.db",  # not a database file
    ],
    ids=["postgresql-refused", "sqlite-not-a-database"],
)
def test_a_database_unreachable_at_start_is_one_error_line(
    command: str, url: str, tmp_path: Path
) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    url = url.format(tmp=tmp_path)
    result = subprocess.run(
        [CLI, *command.split(), "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: database_url: cannot reach the database"), lines[0]


def test_a_bad_log_format_is_one_error_line(sqlite_url: str) -> None:
    result = subprocess.run(
        [CLI, "serve", "--database-url", sqlite_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(SLA_ENGINE_LOG_FORMAT="xml"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: SLA_ENGINE_LOG_FORMAT") and "xml" in result.stderr


# -- logs ---------------------------------------------------------------------------------


def test_logs_are_lines_with_time_level_and_logger(sqlite_url: str, tmp_path: Path) -> None:
    with serving(tmp_path, sqlite_url) as served:
        httpx.get(f"{served.base}/healthz")
    lines = served.stderr().splitlines()
    assert any("Application startup complete" in line for line in lines), lines
    bad = [line for line in lines if not TEXT_LINE.match(line)]
    assert not bad, bad


def test_json_logs_are_one_object_a_line(sqlite_url: str, tmp_path: Path) -> None:
    env = clean_env(SLA_ENGINE_LOG_FORMAT="json")
    with serving(tmp_path, sqlite_url, env=env) as served:
        httpx.get(f"{served.base}/healthz")
    records = [json.loads(line) for line in served.stderr().splitlines()]
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert datetime.fromisoformat(record["time"]).tzinfo is not None
    assert any(r["message"] == "Application startup complete." for r in records)


def test_retried_and_dead_deliveries_are_logged(
    sqlite_url: str, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    """A retried delivery is a WARNING, a dead one an ERROR, each naming the ticket, the
    metric and the destination (as fields, in JSON)."""
    rec, base = receiver
    rec.script["/hook"] = [500] * 20
    config = tmp_path / "sla.toml"
    config.write_text(
        f"""
[[destinations]]
name = "oncall"
type = "webhook"
url = "{base}/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[policies.emergency.first_response]
escalate = [{{at = "100%", to = "oncall"}}]
"""
    )
    env = clean_env(
        SLA_ENGINE_LOG_FORMAT="json",
        SLA_ENGINE_ESCALATION_POLL_S="0.1",
        SLA_ENGINE_ESCALATION_MAX_ATTEMPTS="2",
        SLA_ENGINE_ESCALATION_BACKOFF_BASE_S="0.1",
        SLA_ENGINE_ESCALATION_BACKOFF_CAP_S="0.2",
    )
    created = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    with serving(tmp_path, sqlite_url, "--config", str(config), env=env) as served:
        made = httpx.post(
            f"{served.base}/v1/tickets",
            json={"id": "LATE-1", "policy": "emergency", "created_at": created},
        )
        assert made.status_code == 201, made.text

        def records() -> list[dict[str, object]]:
            return [json.loads(line) for line in served.stderr().splitlines()]

        wait_for(
            lambda: any(r["level"] == "ERROR" for r in records()), timeout=30, what="dead letter"
        )
    escalation_lines = [r for r in records() if r["logger"] == "sla_engine.escalation.delivery"]
    levels = [r["level"] for r in escalation_lines]
    assert levels == ["WARNING", "ERROR"], escalation_lines
    for record in escalation_lines:
        assert record["ticket_id"] == "LATE-1"
        assert record["metric"] == "first_response"
        assert record["destination"] == "oncall"
        for name in ("LATE-1", "first_response", "oncall"):
            assert name in str(record["message"])
    assert "retrying" in str(escalation_lines[0]["message"])
    assert "dead" in str(escalation_lines[1]["message"])


# -- a database outage --------------------------------------------------------------------


OUTAGE_S = 9.0
"""Under the 10 s between two lines of a failing component, so each may log once."""


@contextmanager
def refusing_connections(url: str) -> Iterator[None]:
    """The database refuses new connections and its open ones are ended, then comes back."""
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_a_database_outage_is_a_line_per_component_per_10_s(pg_url: str, tmp_path: Path) -> None:
    """9 s without the database under steady traffic: every request a 503 with Retry-After,
    /readyz a 503, and the log one line per failing component (the next one is due 10 s after
    it), not a traceback per request."""
    with serving(tmp_path, pg_url, env=clean_env(SLA_ENGINE_ESCALATION_POLL_S="0.1")) as served:
        client = httpx.Client(base_url=served.base, timeout=30)
        ticket = {"id": "T-1", "policy": "standard", "created_at": "2026-11-20T13:00:00Z"}
        assert client.post("/v1/tickets", json=ticket).status_code == 201
        assert client.get("/readyz").status_code == 200
        before = len(served.stderr().splitlines())
        answers: list[int] = []
        with refusing_connections(pg_url):
            began = time.monotonic()
            while time.monotonic() - began < OUTAGE_S:
                answer = client.get("/v1/tickets/T-1")
                answers.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.headers["retry-after"] == "1"
                    assert answer.headers["content-type"] == "application/problem+json"
                client.get("/metrics")
            ready = client.get("/readyz")
            health = client.get("/healthz")
            during = served.stderr().splitlines()[before:]
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="ready")
        assert client.get("/v1/tickets/T-1").status_code == 200
        client.close()
    assert answers.count(503) > 100, answers[:20]
    assert ready.status_code == 503 and ready.headers["retry-after"] == "1", ready.text
    assert "database unavailable" in ready.json()["detail"]
    assert health.status_code == 503 and health.headers["retry-after"] == "1"
    assert not [line for line in during if "Traceback" in line], during
    # api, metrics, escalation scheduler, calendar jobs and source: a line each at the most
    components = Counter(
        line.split(": database unavailable")[0].rsplit(": ", 1)[-1] for line in during
    )
    assert max(components.values()) == 1 and len(during) <= 5, "\n".join(during)
    assert any("api: database unavailable" in line for line in during), during
    assert any("escalation scheduler: database unavailable" in line for line in during), during


def test_readyz_fails_while_the_escalation_loop_is_stuck(pg_url: str, tmp_path: Path) -> None:
    """The loop cannot turn while its table is locked, though `select 1` answers."""
    with serving(tmp_path, pg_url, env=clean_env(SLA_ENGINE_ESCALATION_POLL_S="0.1")) as served:
        readyz = f"{served.base}/readyz"
        wait_for(lambda: httpx.get(readyz, timeout=30).json().get("scheduler") == "ok")
        holder = sa.create_engine(pg_url)
        try:
            with holder.begin() as conn:
                conn.execute(sa.text("LOCK TABLE escalation_timers IN ACCESS EXCLUSIVE MODE"))
                locked = time.monotonic()
                # 503 once the loop's last pass is 10 s old: at most ~10 s after the lock
                while (stuck := httpx.get(readyz, timeout=30)).status_code == 200:
                    assert time.monotonic() - locked < 30, stuck.text
                    time.sleep(0.2)
        finally:
            holder.dispose()
        wait_for(lambda: httpx.get(readyz, timeout=30).status_code == 200, what="ready again")
    assert stuck.status_code == 503, stuck.text
    assert "escalation loop has not turned" in stuck.json()["detail"]
    assert stuck.headers["retry-after"] == "1"


# -- metrics across processes -------------------------------------------------------------


def counter(text: str, route: str, status: str = "200") -> float:
    pattern = (
        r'^sla_engine_http_requests_total\{[^}]*method="GET"[^}]*route="'
        + re.escape(route)
        + r'"[^}]*status="'
        + status
        + r'"[^}]*\} (\S+)$'
    )
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_counters_agree_in_every_worker_process(sqlite_url: str, tmp_path: Path) -> None:
    """`serve --workers 2`: each scrape, whichever process answers, reads the same totals; a
    restart with the same multiprocess directory starts from zero."""
    folder = tmp_path / "prom"
    folder.mkdir()
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(folder))
    for run in range(2):
        with serving(tmp_path, sqlite_url, "--workers", "2", env=env) as served:
            # The port accepts at once; the worker processes answer once they have started.
            assert httpx.get(f"{served.base}/healthz", timeout=60).status_code == 200
            for _ in range(20):
                with httpx.Client(base_url=served.base, timeout=60) as client:  # new connections
                    assert client.get("/v1/calendars").status_code == 200
            scrapes = []
            for _ in range(12):
                with httpx.Client(base_url=served.base, timeout=60) as client:
                    scrapes.append(counter(client.get("/metrics").text, "/v1/calendars"))
        assert scrapes == [20.0] * 12, (run, scrapes)


def test_the_worker_serves_its_metrics(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    worker = start(tmp_path, "worker", "--database-url", sqlite_url, "--metrics-port", str(port))
    try:
        wait_for(lambda: "running" in worker.stderr() or worker.proc.poll() is not None)
        assert worker.proc.poll() is None, worker.stderr()
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "sla_engine_escalations_due_total" in text
        assert f"metrics on http://127.0.0.1:{port}/metrics" in worker.stdout()
    finally:
        assert worker.stop() == 0


# -- what uvicorn's parser refuses ---------------------------------------------------------


def raw_request(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_what_the_http_parser_refuses_is_a_problem(sqlite_url: str, tmp_path: Path) -> None:
    with serving(tmp_path, sqlite_url) as served:
        long_url = raw_request(
            served.base, b"GET /v1/tickets/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        garbage = raw_request(served.base, b"GE T / HTTP/1.1\r\n\r\n")
        stays_up = httpx.get(f"{served.base}/healthz")
    for answer, status in ((long_url, 414), (garbage, 400)):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
        assert b"content-type: application/problem+json" in head
        problem = json.loads(body)
        assert problem["status"] == status and problem["title"]
        assert len(body) < 1000
    assert stays_up.status_code == 200
