"""Smoke test of the import benchmark: a tiny SQLite-only run completes and prints its table.

No timing is judged; only that the command ran, every column is there and the memory check.
"""

from __future__ import annotations

from tests.support.bench import run_benchmark


def test_import_throughput_quick_run_prints_its_table() -> None:
    run = run_benchmark("import_throughput.py", "--quick", "--sqlite-only")
    table = run.stdout[run.stdout.index("database") :]
    for column in ("events/s", "ev/CPU-s", "single/s", "ratio", "aim", "RSS MB"):
        assert column in table, column
    row = next(line for line in table.splitlines() if line.strip().startswith("sqlite "))
    assert row.rstrip().endswith("ok")
    assert "0 rejected" in run.stdout
