"""`sla-engine serve`, `db upgrade` and `report attainment` as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

CLI = str(Path(sys.executable).parent / "sla-engine")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=120, env=env or clean_env()
    )


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("SLA_ENGINE_API_TOKEN", "SLA_ENGINE_DATABASE_URL"):
        env.pop(key, None)
    return env


@contextmanager
def serving(url: str, *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--database-url", url, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited early: {proc.communicate()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("serve did not become healthy within 60 s")
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serve_answers_then_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sla.db'}"
    with serving(url) as (base, proc):
        made = httpx.post(
            f"{base}/v1/tickets",
            json={"id": "T-1", "policy": "standard", "created_at": "2026-11-20T13:00:00-07:00"},
        )
        assert made.status_code == 201, made.text
        reply = httpx.post(
            f"{base}/v1/tickets/T-1/events",
            json={
                "event_id": "e-1",
                "type": "agent_reply",
                "occurred_at": "2026-11-20T13:45:00-07:00",
            },
        )
        assert reply.status_code == 201, reply.text
        sla = httpx.get(f"{base}/v1/tickets/T-1/sla").json()
        assert sla["metrics"]["first_response"]["status"] == "achieved"
        deadline = httpx.post(
            f"{base}/v1/deadlines",
            json={
                "calendar": "smartertools",
                "start": "2026-11-20T13:00:00-07:00",
                "duration": "4h",
            },
        ).json()
        assert deadline["deadline"] == "2026-11-23T08:00:00-07:00"
        bad = httpx.post(f"{base}/v1/deadlines", json={"calendar": "smartertools"})
        assert bad.status_code == 422 and bad.json()["field"] == "start"

        plot = tmp_path / "attainment.png"
        report = run_cli(
            "report",
            "attainment",
            "--database-url",
            url,
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-12-01T00:00:00Z",
            "--plot",
            str(plot),
            "--json",
        )
        assert report.returncode == 0, report.stderr
        numbers = json.loads(report.stdout[: report.stdout.rindex("}") + 1])
        assert numbers["count"] == 1
        assert numbers["median_response_s"] == 2700.0
        assert numbers["within_target"]["share"] == 1.0
        assert plot.read_bytes()[:4] == b"\x89PNG"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        out, _ = proc.communicate()
        assert f"http://127.0.0.1:{base.rsplit(':', 1)[1]}" in out


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serve_with_worker_processes(db_url: str, tmp_path: Path) -> None:
    """`--workers 2`: every process knows the config, both take writes at once, the log stays
    whole, SIGTERM ends them all."""
    config = tmp_path / "sla.toml"
    config.write_text('[policies.gold.first_response]\ncalendar = "24x7"\nbreach = "30m"\n')
    with serving(db_url, "--workers", "2", "--config", str(config)) as (base, proc):
        workers = _children(proc.pid)
        assert len(workers) >= 2
        created = "2026-11-20T13:00:00-07:00"
        tickets = [f"W-{i}" for i in range(6)]
        for i, ticket in enumerate(tickets):
            made = httpx.post(
                f"{base}/v1/tickets",
                json={"id": ticket, "policy": ("standard", "gold")[i % 2], "created_at": created},
            )
            assert made.status_code == 201, made.text
        answers: list[int] = []

        def post_events(offset: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                for n in range(offset, 60, 4):
                    body = {
                        "event_id": f"e-{n}",
                        "type": ("customer_reply", "agent_reply")[n % 2],
                        "occurred_at": f"2026-11-20T14:{n:02d}:00-07:00",
                    }
                    answers.append(
                        client.post(f"/v1/tickets/{tickets[n % 6]}/events", json=body).status_code
                    )

        threads = [threading.Thread(target=post_events, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [201] * 60
        for ticket in tickets:
            events = httpx.get(f"{base}/v1/tickets/{ticket}").json()["events"]
            assert len(events) == 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        out, _ = proc.communicate()
        assert "2 worker processes" in out
        give_up = time.monotonic() + 15
        while _alive(workers) and time.monotonic() < give_up:
            time.sleep(0.1)
        assert _alive(workers) == []


def _alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie waiting to be reaped counts as gone)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def cli_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real CLI entry point (`sla_engine.cli.run`) in this process: same code, no start-up."""
    from sla_engine.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_upgrade_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, first, err = cli_in_process(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0, err
    assert "at revision" in first
    code, again, _ = cli_in_process(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0 and again == first
    code, current, _ = cli_in_process(capsys, "db", "current", "--database-url", url)
    assert current == first


def test_report_on_postgresql(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli_in_process(capsys, "report", "attainment", "--database-url", pg_url)
    assert code == 0, err
    assert "tickets             0" in out
    assert "n/a" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["report", "attainment", "--from", "2026-11-01T00:00"], "--from"),
        (["report", "attainment", "--to", "tomorrow"], "--to"),
        (
            ["report", "attainment", "--from", "2026-11-02T00:00Z", "--to", "2026-11-01T00:00Z"],
            "--to",
        ),
        (["report", "attainment", "--policy", "platinum"], "platinum"),
        (["report", "attainment", "--plot", "out.txt"], "--plot"),
        (["serve", "--config", "/nonexistent/sla.toml"], "/nonexistent/sla.toml"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["db", "upgrade", "--database-url", "mysql://x/y"], "mysql"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    if "--database-url" not in args:
        args = [*args, "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
    code, out, err = cli_in_process(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert named in lines[0]
    assert "Traceback" not in err


def test_a_bad_argument_in_a_real_process(tmp_path: Path) -> None:
    result = run_cli(
        "report",
        "attainment",
        "--from",
        "2026-11-01T00:00",
        "--database-url",
        f"sqlite:///{tmp_path / 'x.db'}",
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: --from") and "Traceback" not in result.stderr
