"""Smoke test of the API benchmark: a tiny SQLite-only run completes and prints its table.

No timing is judged; only that the server started, every measure ran and the table is there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "api_throughput.py"


def test_api_throughput_quick_run_prints_its_table() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--sqlite-only"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    table = run.stdout[run.stdout.index("measure") :]
    for row in (
        "batch deadlines/s",
        "single deadline req/s (httpx)",
        "single deadline req/s (raw)",
        "ticket events/s (httpx)",
        "ticket events/s (raw)",
    ):
        assert row in table, row
    assert "200,000" in table and "1,500" in table and "1,000" in table
