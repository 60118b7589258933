"""Smoke test of the batch benchmark: a tiny SQLite-only run completes and prints its table."""

from __future__ import annotations

from tests.support.bench import run_benchmark


def test_batch_throughput_quick_run_prints_its_table() -> None:
    run = run_benchmark("batch_throughput.py", "--quick", "--sqlite-only")
    for row in ("single POST .../events", "POST /v1/batch, 100/request", "items/transaction"):
        assert row in run.stdout, row
