"""Smoke test of the deadline benchmark: a tiny run completes and prints its table.

No timing is judged here; only that every contender ran and the report has its parts.
"""

from __future__ import annotations

from tests.support.bench import run_benchmark


def test_deadline_throughput_quick_run_prints_the_comparison_table() -> None:
    out = run_benchmark(
        "deadline_throughput.py",
        "--quick",
        "--starts",
        "300",
        "--many",
        "2000",
        "--slow-subset",
        "20",
        "--min-time",
        "0",
    ).stdout
    for contender in (
        "sla_engine Calendar.add",
        "sla_engine add_many",
        "businesstimedelta",
        "pandas CustomBusinessHour",
    ):
        assert out.count(contender) >= 2, contender  # one row per budget (+4h, +400h)
    assert "deadlines/s" in out
    assert "first 20 starts only" in out
    assert "businesstimedelta +400h:" in out and "of 20 answers differ" in out
    assert "differ from Calendar.add" not in out  # add_many agrees with the scalar path
