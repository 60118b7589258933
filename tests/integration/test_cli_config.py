"""`sla-engine config check`, `--version` and `-h` in real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config.toml"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
pytestmark = pytest.mark.process


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sla-engine") or str(Path(sys.executable).parent / "sla-engine")
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=60
    )


def test_the_shipped_example_config_passes_the_check() -> None:
    result = cli(
        "config", "check", str(EXAMPLE), env={**os.environ, "ONCALL_WEBHOOK_SECRET": SECRET}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {EXAMPLE}")
    assert "emergency, gold, standard" in result.stdout
    assert "oncall, pagerduty" in result.stdout


def test_without_a_file_the_built_in_defaults_are_checked() -> None:
    result = cli("config", "check")
    assert result.returncode == 0, result.stderr
    assert "policies: emergency, standard" in result.stdout


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            '[policies.standard.first_response]\nbreach = "4x"\n',
            "policies.standard.first_response.breach",
        ),
        ('[policies.standard.first_response]\ncalendar = "/no/such/desk.toml"\n', "desk.toml"),
        ("[database]\nport = 5\n", "database"),
        ("not toml at all ===", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_error_line_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = cli("config", "check", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert named in lines[0]


def test_a_missing_secret_variable_is_named() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ONCALL_WEBHOOK_SECRET"}
    result = cli("config", "check", str(EXAMPLE), env=env)
    assert result.returncode == 2
    assert "ONCALL_WEBHOOK_SECRET" in result.stderr


def test_version_and_short_help() -> None:
    version = cli("--version")
    assert version.returncode == 0
    assert version.stdout.split()[0] == "sla-engine"
    assert version.stdout.split()[1][0].isdigit()
    short = cli("-h")
    assert short.returncode == 0
    assert "Usage: sla-engine" in short.stdout and "config" in short.stdout
    sub = cli("config", "check", "-h")
    assert sub.returncode == 0 and "Usage:" in sub.stdout


def test_a_name_that_is_no_file_may_be_a_stored_calendar(tmp_path: Path) -> None:
    """`config check` cannot see the database: it passes with a note; `serve` then refuses
    to start unless the calendar is stored there."""
    path = tmp_path / "desk.toml"
    path.write_text('[policies.standard.first_response]\ncalendar = "desk-berlin"\n')
    checked = cli("config", "check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "note: policies.standard.first_response.calendar = 'desk-berlin'" in checked.stdout

    db = f"sqlite:///{tmp_path / 'sla.db'}"
    served = cli("serve", "--config", str(path), "--database-url", db, "--port", "0")
    assert served.returncode == 2
    lines = served.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "desk-berlin" in lines[-1], served.stderr
    assert "policies.standard.first_response.calendar" in lines[-1]
    assert "Traceback" not in served.stderr

    calendar = tmp_path / "cal.toml"
    calendar.write_text(
        'name = "Berlin desk"\ntimezone = "Europe/Berlin"\n[hours]\nmon = ["09:00-17:00"]\n'
    )
    put = cli("calendars", "put", "desk-berlin", str(calendar), "--database-url", db)
    assert put.returncode == 0, put.stderr
    # once stored, the same config builds the services (credits show starts them all)
    started = cli("credits", "show", "acme", "--config", str(path), "--database-url", db)
    assert started.returncode == 0, started.stderr


def test_a_policy_may_name_a_calendar_file_by_path(tmp_path: Path) -> None:
    """`calendar = "/path/desk.toml"` in a policy: the service computes with that file."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sla_engine.composition import build_services
    from sla_engine.config import load_config
    from sla_engine.tickets import TicketCreate

    desk = tmp_path / "desk.toml"
    desk.write_text((ROOT / "calendars" / "smartertools.toml").read_text())
    path = tmp_path / "config.toml"
    path.write_text(f'[policies.standard.first_response]\ncalendar = "{desk}"\n')
    db = f"sqlite:///{tmp_path / 'sla.db'}"
    services = build_services(load_config(path, database_url=db, stored_calendars=True))
    try:
        friday = datetime(2026, 11, 20, 13, 0, tzinfo=ZoneInfo("America/Phoenix"))
        services.tickets.create_ticket(TicketCreate(id="T-1", policy="standard", created_at=friday))
        state = services.tickets.sla("T-1", at=friday)
        breach_at = state.metrics["first_response"].breach_at
        assert breach_at == datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("America/Phoenix"))
    finally:
        services.close()
