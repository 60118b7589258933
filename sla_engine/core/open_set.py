"""A calendar's open set within one UTC year, as sorted intervals of epoch microseconds.

`YearCompiler` applies the calendar rules 1-3 (docs/REFERENCE.md, Rules) to one spec: each
local date's windows (its [dates] entry, else none on a holiday, else its weekday's hours)
turned into instants with zoneinfo (fold=0), merged, minus the closures. `timeline.py` builds
its arithmetic on these per-year lists; `calendar_versions.py` stitches several specs' lists
together.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sla_engine.core.calendar_spec import CalendarSpec, Window
from sla_engine.core.times import from_epoch_us, instant_us
from sla_engine.errors import CalendarError

_YEAR_MARGIN = 3  # local dates before/after a UTC year whose windows may reach into it

Interval = tuple[int, int]


def year_start_us(year: int) -> int:
    return instant_us(datetime(year, 1, 1, tzinfo=UTC))


def utc_year(us: int) -> int:
    try:
        return from_epoch_us(us).year
    except OverflowError:
        raise CalendarError(
            "instant beyond the supported range of years", field="instant", value=us
        ) from None


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of half-open intervals: sorted, overlapping and touching ones joined."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract_intervals(opened: list[Interval], closed: list[Interval]) -> list[Interval]:
    """`opened` minus `closed`, both sorted and disjoint."""
    result: list[Interval] = []
    first = 0
    for start, end in opened:
        while first < len(closed) and closed[first][1] <= start:
            first += 1
        cursor = start
        index = first
        while index < len(closed) and closed[index][0] < end:
            c_start, c_end = closed[index]
            if c_start > cursor:
                result.append((cursor, c_start))
            cursor = max(cursor, c_end)
            index += 1
        if cursor < end:
            result.append((cursor, end))
    return result


class YearCompiler:
    """Pure: the open intervals of a spec within one UTC year, in epoch microseconds."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.tz = spec.timezone
        self._holidays = spec.holidays.build() if spec.holidays else None
        self._ics = spec.holidays.ics if spec.holidays else ()
        self._closures = merge_intervals(
            (self._moment_us(c.start), self._moment_us(c.end)) for c in spec.closures
        )

    def _moment_us(self, moment: datetime) -> int:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return instant_us(moment)

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """Rule 1: the [dates] entry, else nothing on a holiday, else the weekday's hours."""
        override = self.spec.dates.get(day)
        if override is not None:
            return override
        if self._holidays is not None and day in self._holidays:
            return ()
        return self.spec.hours[day.weekday()]

    def compile(self, year: int) -> list[Interval]:
        lo, hi = year_start_us(year), year_start_us(year + 1)
        tz = self.tz
        raw: list[Interval] = []
        day = date(year - 1, 12, 31) - timedelta(days=_YEAR_MARGIN)
        last = date(year + 1, 1, 1) + timedelta(days=_YEAR_MARGIN)
        one_day = timedelta(days=1)
        while day <= last:
            windows = self.windows_on(day)
            if windows:
                midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
                for window in windows:
                    # wall-clock arithmetic on an aware datetime, then fold=0 conversion (rule 2)
                    start = instant_us(midnight + window.start)
                    end = instant_us(midnight + window.end)
                    if end > lo and start < hi:
                        raw.append((max(start, lo), min(end, hi)))
            day += one_day
        opened = merge_intervals(raw)
        closures = self._closures
        if self._ics:  # timed iCalendar events close their span, like [[closures]]
            timed = [
                (self._moment_us(start), self._moment_us(end))
                for source in self._ics
                for start, end in source.year(year).closures
            ]
            closures = merge_intervals([*closures, *timed])
        if closures:
            opened = subtract_intervals(opened, closures)
        return opened
