"""The pure attainment numbers, the CSV rows and the plot (the plot's faults each have a test
that failed before its fix)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla_engine.core.policies import default_policies
from sla_engine.errors import InputError
from sla_engine.report import (
    CSV_COLUMNS,
    MetricRow,
    attainment,
    iso_week,
    percentile,
    policy_limits,
    status_at,
    to_csv,
)
from sla_engine.report_plot import bin_edges, plot_attainment
from tests.support.plots import saved_axes

T0 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
HOUR = timedelta(hours=1)


def row(
    status: str,
    *,
    answered_after: timedelta | None = None,
    start: datetime = T0,
    target: timedelta | None = HOUR,
    breach: timedelta = 4 * HOUR,
) -> MetricRow:
    """A 24x7-style row: business time equals real time, so the numbers are easy to read."""
    stopped = None if answered_after is None else start + answered_after
    elapsed = 0.0 if answered_after is None else answered_after.total_seconds()
    return MetricRow(
        started_at=start,
        target_at=None if target is None else start + target,
        breach_at=start + breach,
        stopped_at=stopped,
        status=status,
        business_elapsed_s=elapsed,
    )


def test_attainment_counts_each_kind_of_ticket() -> None:
    rows = [
        row("achieved", answered_after=timedelta(minutes=30)),  # within target
        row("achieved", answered_after=HOUR),  # on the target counts as on time
        row("achieved", answered_after=3 * HOUR),  # target missed, breach kept
        row("breached", answered_after=5 * HOUR),  # answered late
        row("active"),  # row says active but NOW is past breach_at: breached
        row("active", start=NOW - timedelta(minutes=90)),  # past target, inside breach: open
        row("active", start=NOW - timedelta(minutes=10)),  # inside both: open
        row("cancelled"),
        row("achieved", answered_after=2 * HOUR, target=None),  # a policy without a target
    ]
    result = attainment(rows, NOW)
    assert result.count == 9
    assert result.cancelled == 1
    assert result.answered == 5
    assert result.open == 2
    assert (result.within_breach.achieved, result.within_breach.decided) == (4, 6)
    # decided for the target: 4 answered with a target, the overdue one, the one past target
    assert (result.within_target.achieved, result.within_target.decided) == (2, 6)
    assert result.within_target.share == pytest.approx(2 / 6)
    assert result.breaches == 2
    assert result.median_response_s == 2 * 3600.0
    assert result.p90_response_s == pytest.approx(percentile([1800, 3600, 10800, 18000, 7200], 90))
    assert result.breaches_per_week == {"2026-W48": 2}
    json = result.to_json()
    assert json["within_breach"] == {"achieved": 4, "decided": 6, "share": 4 / 6}
    assert json["breaches"] == 2


def test_empty_report_has_no_shares() -> None:
    result = attainment([], NOW)
    assert result.count == 0
    assert result.within_target.share is None and result.within_breach.share is None
    assert result.median_response_s is None and result.p90_response_s is None
    assert result.breaches_per_week == {}


def test_percentiles_interpolate() -> None:
    assert percentile([float(v) for v in range(1, 11)], 50) == 5.5
    assert percentile([float(v) for v in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([], 50) is None


def test_iso_weeks_across_the_year_end() -> None:
    assert iso_week(datetime(2026, 12, 31, 12, tzinfo=UTC)) == "2026-W53"
    assert iso_week(datetime(2027, 1, 4, 12, tzinfo=UTC)) == "2027-W01"
    # a breach at 23:30 Sunday in Phoenix is Monday in UTC: weeks are UTC weeks
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=ZoneInfo("America/Phoenix"))
    assert iso_week(sunday_night) == "2026-W49"
    rows = [
        row("breached", answered_after=5 * HOUR, start=datetime(2026, 12, 31, tzinfo=UTC)),
        row("breached", answered_after=5 * HOUR, start=datetime(2027, 1, 5, tzinfo=UTC)),
    ]
    assert attainment(rows, NOW).breaches_per_week == {"2026-W53": 1, "2027-W01": 1}


def test_a_running_metric_past_its_deadline_is_breached_now() -> None:
    overdue = row("active")  # breach_at T0 + 4h, NOW two days later
    assert status_at(overdue, NOW) == "breached"
    assert status_at(overdue, T0 + HOUR) == "active"
    assert status_at(row("paused"), NOW) == "paused"
    assert status_at(row("achieved", answered_after=HOUR), NOW) == "achieved"


def test_csv_has_a_header_and_one_line_per_ticket_metric() -> None:
    rows = [
        replace(row("achieved", answered_after=HOUR), ticket_id="A", policy="standard"),
        replace(row("active"), ticket_id="B,2", policy="standard", calendar="smartertools"),
    ]
    lines = list(csv.reader(io.StringIO(to_csv(rows, NOW))))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert {"ticket_id", "policy", "metric", "cycle", "status", "started_at", "stopped_at"} <= set(
        lines[0]
    )
    first, second = (dict(zip(lines[0], line, strict=True)) for line in lines[1:])
    assert len(lines) == 3
    assert first["ticket_id"] == "A" and first["status"] == "achieved"
    assert first["stopped_at"] == "2026-11-23T17:00:00+00:00"
    assert float(first["business_elapsed_s"]) == 3600.0
    assert second["ticket_id"] == "B,2"  # quoted, not split
    assert second["status"] == "breached" and second["stopped_at"] == ""
    assert second["calendar"] == "smartertools" and second["metric"] == "first_response"


def test_policy_limits_are_the_reported_policys_own_or_none() -> None:
    policies = default_policies()
    assert policy_limits(policies, "first_response", ["standard"]) == (3600.0, 14400.0)
    assert policy_limits(policies, "first_response", ["emergency", "emergency"]) == (None, 3600.0)
    assert policy_limits(policies, "first_response", ["standard", "emergency"]) == (None, None)
    assert policy_limits(policies, "first_response", []) == (None, None)
    assert policy_limits(policies, "resolution", ["standard"]) == (None, None)


# --- the plot ------------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The axes of each figure the plot saves."""
    return saved_axes(monkeypatch)


def bars(ax: Any) -> list[Any]:
    return [p for p in ax.patches if p.get_height() > 0]


def vertical_lines(ax: Any) -> list[float]:
    return sorted(float(line.get_xdata()[0]) for line in ax.get_lines())


@pytest.mark.parametrize(("target", "breach"), [(3600.0, 14400.0), (None, 3600.0), (None, None)])
def test_plot_writes_a_png(tmp_path, target: float | None, breach: float | None) -> None:  # type: ignore[no-untyped-def]
    rows = [row("achieved", answered_after=timedelta(minutes=m)) for m in range(5, 300, 7)]
    rows.append(row("breached", answered_after=9 * HOUR))
    out = plot_attainment(rows, tmp_path / "a.png", now=NOW, target_s=target, breach_s=breach)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_plot_of_no_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = plot_attainment([], tmp_path / "empty.png", now=NOW)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_draws_only_the_limits_it_is_given(tmp_path, drawn: list[Any]) -> None:  # type: ignore[no-untyped-def]
    """Fault: the standard policy's 1 h / 4 h lines were drawn whatever the tickets' policy."""
    rows = [row("achieved", answered_after=timedelta(minutes=m)) for m in (10, 50, 130)]
    plot_attainment(rows, tmp_path / "none.png", now=NOW)
    plot_attainment(rows, tmp_path / "emergency.png", now=NOW, target_s=None, breach_s=3600.0)
    assert vertical_lines(drawn[0]) == []
    assert vertical_lines(drawn[1]) == [1.0]


def test_one_tickets_bar_is_one_bin_of_many(tmp_path, drawn: list[Any]) -> None:  # type: ignore[no-untyped-def]
    """Fault: a single quick answer, no limits: the axis ended inside its only bar."""
    for minutes in (1, 4, 30, 0):
        plot_attainment(
            [row("achieved", answered_after=timedelta(minutes=minutes))],
            tmp_path / f"one-{minutes}.png",
            now=NOW,
            target_s=None,
            breach_s=None,
        )
    for ax in drawn:
        low, high = ax.get_xlim()
        (bar,) = bars(ax)
        assert low - 1e-9 <= bar.get_x() and bar.get_x() + bar.get_width() <= high + 1e-9
        assert bar.get_width() <= (high - low) / 5


def test_breached_tickets_never_answered_are_drawn(tmp_path, drawn: list[Any]) -> None:  # type: ignore[no-untyped-def]
    """Fault: a running metric past its deadline was left out of the picture."""
    overdue = replace(row("active"), business_elapsed_s=6 * 3600.0)  # breach_at T0 + 4h < NOW
    inside = replace(row("active", start=NOW - timedelta(minutes=10)), business_elapsed_s=600.0)
    rows = [row("achieved", answered_after=timedelta(minutes=30)), overdue, inside]
    plot_attainment(rows, tmp_path / "overdue.png", now=NOW, target_s=3600.0, breach_s=14400.0)
    (ax,) = drawn
    assert sum(bar.get_height() for bar in bars(ax)) == 2  # answered + overdue, not the open one
    late = [bar for bar in bars(ax) if bar.get_x() >= 4.0]
    assert [bar.get_x() for bar in late] == [6.0]
    assert any("not answered" in text.get_text() for text in ax.get_legend().get_texts())


def test_a_ticket_left_for_weeks_does_not_squeeze_the_rest(tmp_path, drawn: list[Any]) -> None:  # type: ignore[no-untyped-def]
    rows = [row("achieved", answered_after=timedelta(minutes=m)) for m in range(10, 200, 10)]
    rows.append(replace(row("active"), business_elapsed_s=150 * 3600.0))
    plot_attainment(rows, tmp_path / "weeks.png", now=NOW, target_s=3600.0, breach_s=14400.0)
    (ax,) = drawn
    high = ax.get_xlim()[1]
    assert high <= 7.0  # past the 4 h breach by half, not out to 150 h
    last = max(bars(ax), key=lambda bar: bar.get_x())
    assert last.get_x() + last.get_width() == pytest.approx(high)  # counted in the last bin
    assert any("at" in text.get_text() for text in ax.texts)


def test_the_y_axis_counts_whole_tickets(tmp_path, drawn: list[Any]) -> None:  # type: ignore[no-untyped-def]
    """Fault: with few tickets the y axis read 0.2, 0.4, ... tickets."""
    rows = [row("achieved", answered_after=timedelta(minutes=m)) for m in (20, 40, 100)]
    plot_attainment(rows, tmp_path / "few.png", now=NOW, target_s=3600.0, breach_s=14400.0)
    (ax,) = drawn
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_bins_are_round_and_reach_past_the_largest_value() -> None:
    edges = bin_edges([0.5, 4.8])
    width = edges[1] - edges[0]
    assert width * 60 in (5, 10, 15, 30, 60) and edges[0] == 0.0
    assert edges[-1] >= 4.8 + width - 1e-9
    assert len(bin_edges([])) - 1 >= 10


@pytest.mark.parametrize(
    ("target", "breach", "labels", "sizes"),
    [
        (3600.0, 14400.0, ["within target", "after target, within breach", "breached"], [2, 2, 1]),
        (None, 3600.0, ["within breach", "breached"], [2, 3]),
        (3600.0, None, ["within target", "after target"], [2, 3]),
        (None, None, ["answered"], [5]),
    ],
)
def test_plot_groups_partition_the_response_times(
    target: float | None, breach: float | None, labels: list[str], sizes: list[int]
) -> None:
    """Every answered ticket lands in exactly one coloured group, cut at target and breach."""
    import numpy as np

    from sla_engine.report_plot import _split_by_limits

    hours = np.array([0.5, 1.0, 2.0, 4.0, 9.0])
    parts, colours, names = _split_by_limits(hours, target, breach)
    assert names == labels
    assert [len(p) for p in parts] == sizes
    assert len(colours) == len(parts)


def test_without_matplotlib_the_plot_names_the_extra(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(InputError) as caught:
        plot_attainment([], tmp_path / "x.png", now=NOW)
    assert "sla-engine[plot]" in caught.value.message
    assert not (tmp_path / "x.png").exists()
