"""Optional dependencies: a command that needs a missing extra says which one to install.

The missing package is simulated in a fresh interpreter (`sys.modules[name] = None` makes its
import fail), so the test does not depend on what this environment has installed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]

RUN_WITHOUT = """
import sys
sys.modules[{module!r}] = None
from sla_engine.cli import run
sys.exit(run({argv!r}))
"""


def run_without(module: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = RUN_WITHOUT.format(module=module, argv=argv)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_postgresql_url_without_psycopg_names_the_postgres_extra() -> None:
    url = "postgresql://app:s3cret@db.example/sla"
    done = run_without("psycopg", ["db", "upgrade", "--database-url", url])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "sla-engine[postgres]" in lines[0]
    assert "s3cret" not in lines[0]
    assert done.stdout == ""


def test_a_sqlite_url_needs_no_postgres_extra(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = run_without("psycopg", ["db", "upgrade", "--database-url", f"sqlite:///{tmp_path}/x.db"])
    assert done.returncode == 0, done.stderr
    assert "at revision" in done.stdout
