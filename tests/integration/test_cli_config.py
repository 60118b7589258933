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
        ('[policies.standard.first_response]\ncalendar = "nowhere"\n', "nowhere"),
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
