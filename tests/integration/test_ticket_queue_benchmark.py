"""Smoke test of `benchmarks/queue_latency.py`: a tiny SQLite run completes and prints its
table (no timing is judged here)."""

from __future__ import annotations

import pytest

from tests.support.bench import run_benchmark

pytestmark = [pytest.mark.process, pytest.mark.slow]


def test_a_quick_run_prints_every_listing_at_both_sizes() -> None:
    run = run_benchmark("queue_latency.py", "--quick", "--sqlite-only", timeout=600)
    table = run.stdout[run.stdout.index("GET /v1/tickets") :]
    assert "1,000 tickets" in table and "5,000 tickets" in table
    for listing in ("default", "policy=emergency", "metric=resolution", "calendar=24x7"):
        assert f"sqlite      {listing:<20} first" in table
        assert f"sqlite      {listing:<20} deep" in table
