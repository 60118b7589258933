"""The pure attainment numbers and the plot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_engine.report import ResponseRow, attainment, iso_week, percentile, plot_attainment

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
) -> ResponseRow:
    """A 24x7-style row: business time equals real time, so the numbers are easy to read."""
    stopped = None if answered_after is None else start + answered_after
    elapsed = 0.0 if answered_after is None else answered_after.total_seconds()
    return ResponseRow(
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

    from sla_engine.report import _split_by_limits

    hours = np.array([0.5, 1.0, 2.0, 4.0, 9.0])
    parts, colours, names = _split_by_limits(hours, target, breach)
    assert names == labels
    assert [len(p) for p in parts] == sizes
    assert len(colours) == len(parts)
