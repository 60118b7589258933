"""Smoke test of `benchmarks/queue_latency.py`: a tiny SQLite run completes and prints its
table (no timing is judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "queue_latency.py"


def test_a_quick_run_prints_every_listing_at_both_sizes() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--sqlite-only"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = run.stdout[run.stdout.index("GET /v1/tickets") :]
    assert "1,000 tickets" in table and "5,000 tickets" in table
    for listing in ("default", "policy=emergency", "metric=resolution", "calendar=24x7"):
        assert f"sqlite      {listing:<20} first" in table
        assert f"sqlite      {listing:<20} deep" in table
