"""Smoke test of the event-cost benchmarks: tiny runs complete and print their figures."""

from __future__ import annotations

import pytest

from tests.support.bench import run_benchmark

pytestmark = [pytest.mark.process, pytest.mark.slow]


def run(script: str, *args: str) -> str:
    return run_benchmark(script, *args).stdout


def test_event_cost_prints_both_events_and_the_ratio() -> None:
    out = run("event_cost.py", "--events", "200", "--tickets", "3")
    assert "10th event:" in out and "200th event:" in out and "ratio (wall):" in out


def test_event_route_cpu_prints_both_figures() -> None:
    out = run("event_route_cpu.py", "--tickets", "5", "--long", "30")
    assert "fresh tickets" in out and "events 30-230" in out
