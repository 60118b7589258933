"""Smoke test of the batch benchmark: a tiny SQLite-only run completes and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "batch_throughput.py"


def test_batch_throughput_quick_run_prints_its_table() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--sqlite-only"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    for row in ("single POST .../events", "POST /v1/batch, 100/request", "items/transaction"):
        assert row in run.stdout, row
