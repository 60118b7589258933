"""Property tests: the engine against a deliberately simple reference written here.

The reference shares no code with the engine: it walks local dates one by one, builds each
window with zoneinfo (fold=0), merges them, cuts out closures, and answers every query by
walking that list of UTC intervals. Calendars are generated as TOML text (so the file reader
is exercised too) in zones with unusual clocks: both DST directions in New York and London,
Lord Howe's 30-minute DST, Kathmandu's +05:45, Phoenix without DST.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_engine.core.calendar import Calendar, calendar_from_spec
from sla_engine.core.calendar_file import parse_calendar_text

ZERO = timedelta(0)
US1 = timedelta(microseconds=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = {
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
    "Asia/Kathmandu": [date(2026, 6, 1), date(2026, 12, 31)],
    "America/Phoenix": [date(2026, 3, 8), date(2026, 12, 31)],
}
PROPERTY_SETTINGS = settings(  # SLA_ENGINE_CALENDAR_EXAMPLES=2000 for a longer hunt
    max_examples=int(os.environ.get("SLA_ENGINE_CALENDAR_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- the reference --------------------------------------------------------------------------


def clock_seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    parts += [0] * (3 - len(parts))
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def merge(pieces: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted union: overlapping and touching intervals joined."""
    merged: list[list[datetime]] = []
    for start, end in sorted(pieces):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


class IntervalWalk:
    """Every query answered by walking `intervals(lo, hi)`, widening the window as needed."""

    def intervals(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        raise NotImplementedError

    def around(self, t: datetime, days: int) -> tuple[datetime, datetime, list]:
        t = t.astimezone(UTC)
        lo, hi = t - timedelta(days=days), t + timedelta(days=days)
        return lo, hi, self.intervals(lo, hi)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        if b < a:
            return -self.elapsed(b, a)
        return sum((e - s for s, e in self.intervals(a, b)), ZERO)

    def is_open(self, t: datetime) -> bool:
        t = t.astimezone(UTC)
        return any(s <= t < e for s, e in self.intervals(t, t + US1))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        start = start.astimezone(UTC)
        days = 16
        while True:
            _, hi, found = self.around(start, days)
            left = duration
            for s, e in found:
                if e <= start:
                    continue
                s = max(s, start)
                if left < e - s and e < hi:
                    return s + left
                left -= e - s
            days *= 2

    def subtract(self, end: datetime, duration: timedelta) -> datetime:
        end = end.astimezone(UTC)
        days = 16
        while True:
            lo, _, found = self.around(end, days)
            left = duration
            for s, e in reversed(found):
                if s >= end:
                    continue
                e = min(e, end)
                if left < e - s and s > lo:
                    return e - left
                left -= e - s
            days *= 2

    def next_open(self, t: datetime) -> datetime:
        t = t.astimezone(UTC)
        days = 16
        while True:
            _, hi, found = self.around(t, days)
            for s, e in found:
                if e > t and e < hi:
                    return max(s, t)
            days *= 2

    def next_close(self, t: datetime) -> datetime:
        t = t.astimezone(UTC)
        days = 16
        while True:
            _, hi, found = self.around(t, days)
            for _, e in found:
                if e > t and e < hi:
                    return e
            days *= 2


@dataclass
class Reference(IntervalWalk):
    zone: str
    hours: dict[int, list[str]]
    dates: dict[date, list[str]] = field(default_factory=dict)
    closures: list[tuple[datetime, datetime]] = field(default_factory=list)
    holiday_subdiv: str | None = None
    use_holidays: bool = False

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @cached_property
    def holiday_table(self) -> holidays.HolidayBase | None:
        if not self.use_holidays:
            return None
        return holidays.country_holidays("US", subdiv=self.holiday_subdiv)

    def toml(self) -> str:
        lines = [f'name = "generated"\ntimezone = "{self.zone}"\n[hours]']
        for index, windows in sorted(self.hours.items()):
            lines.append(f"{WEEKDAYS[index]} = {windows!r}".replace("'", '"'))
        if self.use_holidays:
            lines.append('[holidays]\ncountry = "US"')
            if self.holiday_subdiv:
                lines.append(f'subdiv = "{self.holiday_subdiv}"')
        if self.dates:
            lines.append("[dates]")
            for day, windows in sorted(self.dates.items()):
                lines.append(f'"{day.isoformat()}" = {windows!r}'.replace("'", '"'))
        for start, end in self.closures:
            lines.append(f'[[closures]]\nstart = "{start.isoformat()}"\nend = "{end.isoformat()}"')
        return "\n".join(lines) + "\n"

    def windows_of(self, day: date) -> list[str]:
        if day in self.dates:
            return self.dates[day]
        if self.holiday_table is not None and day in self.holiday_table:
            return []
        return self.hours.get(day.weekday(), [])

    def to_utc(self, wall: datetime) -> datetime:
        return wall.replace(tzinfo=self.tz).astimezone(UTC)

    def intervals(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """The open set clipped to [lo, hi), as merged UTC intervals."""
        lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)  # arithmetic below is in UTC only
        pieces = []
        day = lo.astimezone(self.tz).date() - timedelta(days=3)
        last = hi.astimezone(self.tz).date() + timedelta(days=3)
        while day <= last:
            midnight = datetime.combine(day, time())
            for text in self.windows_of(day):
                first, second = text.split("-")
                a, b = clock_seconds(first), clock_seconds(second)
                if b <= a:
                    b += 86_400
                start = self.to_utc(midnight + timedelta(seconds=a))
                end = self.to_utc(midnight + timedelta(seconds=b))
                if start < end:
                    pieces.append((start, end))
            day += timedelta(days=1)
        result = merge(pieces)
        for c_start, c_end in self.closures:
            cs, ce = self.to_utc(c_start), self.to_utc(c_end)
            cut = []
            for s, e in result:
                if ce <= s or e <= cs:
                    cut.append((s, e))
                    continue
                if s < cs:
                    cut.append((s, cs))
                if ce < e:
                    cut.append((ce, e))
            result = cut
        return [(max(s, lo), min(e, hi)) for s, e in result if max(s, lo) < min(e, hi)]


# -- strategies -----------------------------------------------------------------------------

TRICKY_TIMES = ["00:00", "00:30", "01:30", "02:00", "02:15", "02:30", "03:00", "03:30", "08:00"]
TRICKY_TIMES += ["12:30", "13:30", "17:00", "22:00", "23:30", "23:59:59"]
clock = st.one_of(
    st.sampled_from(TRICKY_TIMES),
    st.builds(
        lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}" if s else f"{h:02d}:{m:02d}",
        st.integers(0, 23),
        st.integers(0, 59),
        st.sampled_from([0, 0, 0, 1, 59]),
    ),
)
window = st.builds(lambda a, b: f"{a}-{b}", clock, st.one_of(clock, st.just("24:00")))


@st.composite
def references(draw: st.DrawFn, anchor: date | None = None) -> tuple[Reference, date]:
    """A calendar with [dates] and closures near `anchor` (by default a DST day of its zone)."""
    zone = draw(st.sampled_from(sorted(ZONES)))
    if anchor is None:
        shift = draw(st.one_of(st.just(0), st.integers(-8, 8)))  # the transition day, often
        anchor = draw(st.sampled_from(ZONES[zone])) + timedelta(days=shift)
    hours = draw(
        st.dictionaries(st.integers(0, 6), st.lists(window, min_size=1, max_size=3), min_size=1)
    )
    near = st.builds(
        lambda k: anchor + timedelta(days=k), st.one_of(st.just(0), st.integers(-6, 6))
    )
    dates = draw(st.dictionaries(near, st.lists(window, max_size=2), max_size=3))
    closures = draw(
        st.lists(
            st.builds(
                lambda d, minute, length: (
                    datetime.combine(d, time()) + timedelta(minutes=minute),
                    datetime.combine(d, time()) + timedelta(minutes=minute + length),
                ),
                near,
                st.integers(0, 24 * 60 - 1),
                st.integers(1, 4 * 24 * 60),
            ),
            max_size=2,
        )
    )
    use_holidays = draw(st.booleans())
    subdiv = draw(st.sampled_from([None, "NY", "AZ"])) if use_holidays else None
    return Reference(zone, hours, dates, closures, subdiv, use_holidays), anchor


def engine_for(reference: Reference) -> Calendar:
    return calendar_from_spec(parse_calendar_text(reference.toml(), "generated.toml"))


@st.composite
def instants(draw: st.DrawFn, reference: Reference, anchor: date) -> datetime:
    base = datetime.combine(anchor, time(), reference.tz).astimezone(UTC)
    t = base + timedelta(microseconds=draw(st.integers(-9 * 86_400_000_000, 9 * 86_400_000_000)))
    if draw(st.booleans()):  # snap to an opening or closing, or next to one
        found = reference.intervals(t - timedelta(days=3), t + timedelta(days=3))
        if found:
            edge = draw(st.sampled_from([x for pair in found for x in pair]))
            t = edge + draw(st.sampled_from([ZERO, US1, -US1]))
    zone = draw(st.sampled_from([UTC, reference.tz, ZoneInfo("Asia/Tokyo")]))
    return t.astimezone(zone)


def weekly_seconds(reference: Reference) -> int:
    total = 0
    for windows in reference.hours.values():
        for text in windows:
            a, b = (clock_seconds(x) for x in text.split("-"))
            total += b - a if b > a else b + 86_400 - a
    return total


def durations_for(reference: Reference) -> st.SearchStrategy[timedelta]:
    """Up to about two weeks of nominal open time, so that both sides stay quick."""
    most = min(60 * 3_600_000_000, 2 * weekly_seconds(reference) * 1_000_000)
    return st.one_of(
        st.just(ZERO),
        st.sampled_from([timedelta(hours=1), timedelta(hours=4), timedelta(minutes=30)]).filter(
            lambda d: d <= timedelta(microseconds=most)
        ),
        st.integers(1, max(1, most)).map(lambda us: timedelta(microseconds=us)),
    )


# -- properties -----------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """For equality tests: Python never equates a time in a repeated hour across zones."""
    return moment.astimezone(UTC)


@PROPERTY_SETTINGS
@given(st.data())
def test_scalar_queries_match_the_reference(data: st.DataObject) -> None:
    reference, anchor = data.draw(references())
    cal = engine_for(reference)
    t = data.draw(instants(reference, anchor), label="t")
    u = data.draw(instants(reference, anchor), label="u")
    d = data.draw(durations_for(reference), label="d")

    assert cal.is_open(t) == reference.is_open(t)
    assert utc(cal.next_open(t)) == reference.next_open(t)
    assert utc(cal.next_close(t)) == reference.next_close(t)
    assert cal.elapsed(t, u) == reference.elapsed(t, u)
    assert cal.elapsed(u, t) == -cal.elapsed(t, u)
    lo, hi = min(t, u), max(t, u)
    assert [(utc(a), utc(b)) for a, b in cal.open_intervals(lo, hi)] == reference.intervals(lo, hi)

    end = cal.add(t, d)
    assert utc(end) == reference.add(t, d)
    assert end.tzinfo == reference.tz
    assert end >= t
    assert cal.elapsed(t, end) == d
    if d > ZERO:
        assert cal.is_open(end)  # inside an open interval, or exactly at an opening
    # latest: one microsecond later, more than d has been spent
    assert cal.elapsed(t, utc(end) + US1) == d + US1  # latest: a microsecond more is too much

    start = cal.subtract(t, d)
    assert utc(start) == reference.subtract(t, d)
    assert start <= t
    assert cal.elapsed(start, t) == d
    if d > ZERO:
        assert cal.is_open(utc(start) - US1)  # inside an open interval, or exactly at a closing
    # add and subtract mirror each other
    back = cal.subtract(end, d)
    assert back <= t and cal.elapsed(back, end) == d and cal.elapsed(back, t) == ZERO
    forth = cal.add(start, d)
    assert forth >= t and cal.elapsed(start, forth) == d and cal.elapsed(t, forth) == ZERO


@PROPERTY_SETTINGS
@given(st.data())
def test_vectorised_calls_equal_the_scalar_ones(data: st.DataObject) -> None:
    reference, anchor = data.draw(references())
    cal = engine_for(reference)
    points = data.draw(st.lists(instants(reference, anchor), min_size=1, max_size=12))
    lengths = data.draw(
        st.lists(durations_for(reference), min_size=len(points), max_size=len(points))
    )
    starts = np.array([p.astimezone(UTC).replace(tzinfo=None) for p in points], "datetime64[us]")
    spans = np.array(lengths, dtype="timedelta64[us]")
    got = cal.add_many(starts, spans)
    expected = [cal.add(p, d) for p, d in zip(points, lengths, strict=True)]
    assert got.tolist() == [e.astimezone(UTC).replace(tzinfo=None) for e in expected]
    scalar = cal.add_many(starts, lengths[0])
    assert scalar.tolist() == [
        cal.add(p, lengths[0]).astimezone(UTC).replace(tzinfo=None) for p in points
    ]
    ends = np.roll(starts, 1)
    elapsed = cal.elapsed_many(starts, ends)
    assert elapsed.tolist() == [
        cal.elapsed(p, q)
        for p, q in zip(points, np.roll(np.array(points, dtype=object), 1), strict=True)
    ]


@settings(PROPERTY_SETTINGS, max_examples=max(1, PROPERTY_SETTINGS.max_examples // 4))
@given(st.data())
def test_long_durations_and_distant_instants_stay_consistent(data: st.DataObject) -> None:
    """Years-long budgets and instants decades apart (compiled in separate runs, then joined)."""
    reference, anchor = data.draw(references())
    cal = engine_for(reference)
    t = data.draw(instants(reference, anchor), label="t")
    weeks = data.draw(st.integers(1, 400), label="weeks")
    d = timedelta(seconds=weeks * weekly_seconds(reference) // 2)
    end = cal.add(t, d)
    assert cal.elapsed(t, end) == d
    assert cal.subtract(end, d) <= t and cal.elapsed(cal.subtract(end, d), t) == ZERO
    later = t + timedelta(days=data.draw(st.integers(0, 40 * 366), label="days"))
    middle = t + (later - t) / 2
    assert cal.elapsed(t, later) == cal.elapsed(t, middle) + cal.elapsed(middle, later)
    starts = np.array([utc(t).replace(tzinfo=None)], dtype="datetime64[us]")
    assert cal.add_many(starts, d)[0] == np.datetime64(utc(end).replace(tzinfo=None), "us")
