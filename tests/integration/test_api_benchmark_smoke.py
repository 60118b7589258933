"""Smoke test of the API benchmark: a tiny SQLite-only run completes and prints its table.

No timing is judged; only that the server started, every measure ran and the table is there.
"""

from __future__ import annotations

from tests.support.bench import run_benchmark


def test_api_throughput_quick_run_prints_its_table() -> None:
    run = run_benchmark("api_throughput.py", "--quick", "--sqlite-only")
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
