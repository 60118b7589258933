"""Business-hours calendars: the seed's cases, DST, file errors, lookup and the vectorised API."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as hst

from sla_engine import Calendar, CalendarError, list_calendars, load_calendar
from sla_engine.core.calendar import calendar_from_spec
from sla_engine.core.calendar_file import parse_calendar_text
from sla_engine.core.timeline import GridIndex
from sla_engine.errors import InputError

PHX = ZoneInfo("America/Phoenix")
NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def phx(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=PHX)


def cal_from(text: str, name: str = "test") -> Calendar:
    return calendar_from_spec(parse_calendar_text(text, f"{name}.toml"), name)


@pytest.fixture(scope="module")
def st() -> Calendar:
    return load_calendar("smartertools")


# -- the seed policy's calendar -------------------------------------------------------------


def test_smartertools_file_matches_the_policy(st: Calendar) -> None:
    assert st.name == "smartertools"
    assert st.title == "SmarterTools support hours"
    assert st.tz == PHX
    assert st.path is not None and st.path.name == "smartertools.toml"


def test_arizona_holidays_2026_as_the_holidays_package_gives_them(st: Calendar) -> None:
    expected = holidays.country_holidays("US", subdiv="AZ", years=2026)
    assert date(2026, 11, 26) in expected and date(2026, 12, 25) in expected
    for day in expected:
        if day.weekday() < 5:
            noon = phx(day.year, day.month, day.day, 12)
            assert not st.is_open(noon), day
            assert st.elapsed(phx(day.year, day.month, day.day), noon + 12 * H) == timedelta(0)
    assert st.is_open(phx(2026, 11, 27, 12))  # the day after Thanksgiving is a working day


@pytest.mark.parametrize(
    ("start", "deadline"),
    [
        (phx(2026, 11, 20, 15), phx(2026, 11, 23, 10)),  # Friday afternoon
        (phx(2026, 11, 20, 13), phx(2026, 11, 23, 8)),  # runs out at Friday's close: Monday opening
        (phx(2026, 11, 25, 16), phx(2026, 11, 27, 11)),  # Thanksgiving Thursday closed
        (phx(2026, 12, 24, 15), phx(2026, 12, 28, 10)),  # Christmas Friday closed
        (phx(2026, 11, 21, 10), phx(2026, 11, 23, 12)),  # Saturday: Monday 08:00 + 4h
        (phx(2026, 11, 22, 23, 59), phx(2026, 11, 23, 12)),  # Sunday night
        (phx(2026, 11, 23, 7, 59, 59), phx(2026, 11, 23, 12)),  # before opening
        (phx(2026, 11, 23, 8), phx(2026, 11, 23, 12)),  # at opening
        (phx(2026, 11, 23, 16, 59, 59, 999999), phx(2026, 11, 24, 11, 59, 59, 999999)),
        (phx(2026, 11, 23, 17), phx(2026, 11, 24, 12)),  # at closing: closed
        (phx(2026, 12, 31, 14), phx(2027, 1, 4, 9)),  # New Year's Day (Friday) closed
    ],
)
def test_four_business_hours(st: Calendar, start: datetime, deadline: datetime) -> None:
    got = st.add(start, 4 * H)
    assert got == deadline
    assert got.tzinfo == PHX and got.utcoffset() == timedelta(hours=-7)
    assert st.elapsed(start, got) == 4 * H


def test_zero_duration_is_the_instant_when_open_else_the_next_opening(st: Calendar) -> None:
    assert st.add(phx(2026, 11, 23, 9, 30), timedelta(0)) == phx(2026, 11, 23, 9, 30)
    assert st.add(phx(2026, 11, 21, 9, 30), timedelta(0)) == phx(2026, 11, 23, 8)
    assert st.add(phx(2026, 11, 23, 17), timedelta(0)) == phx(2026, 11, 24, 8)


def test_subtract_lands_on_the_previous_closing_time(st: Calendar) -> None:
    assert st.subtract(phx(2026, 11, 23, 8), timedelta(0)) == phx(2026, 11, 20, 17)
    assert st.subtract(phx(2026, 11, 23, 12), 4 * H) == phx(2026, 11, 20, 17)
    assert st.subtract(phx(2026, 11, 23, 10), 4 * H) == phx(2026, 11, 20, 15)
    assert st.subtract(phx(2026, 11, 27, 11), 4 * H) == phx(2026, 11, 25, 16)
    assert st.subtract(phx(2026, 11, 23, 9, 30), timedelta(0)) == phx(2026, 11, 23, 9, 30)


def test_elapsed_is_negative_backwards_and_counts_only_open_time(st: Calendar) -> None:
    a, b = phx(2026, 11, 20, 13), phx(2026, 11, 23, 10)
    assert st.elapsed(a, b) == 6 * H
    assert st.elapsed(b, a) == -6 * H
    assert st.elapsed(a, a) == timedelta(0)
    week = st.elapsed(phx(2026, 11, 16), phx(2026, 11, 23))
    assert week == 45 * H
    assert st.elapsed(phx(2026, 11, 23), phx(2026, 11, 30)) == 36 * H  # Thanksgiving week


def test_open_close_queries(st: Calendar) -> None:
    assert st.is_open(phx(2026, 11, 23, 8))
    assert not st.is_open(phx(2026, 11, 23, 17))
    assert st.next_open(phx(2026, 11, 20, 17)) == phx(2026, 11, 23, 8)
    assert st.next_open(phx(2026, 11, 23, 9)) == phx(2026, 11, 23, 9)
    assert st.next_close(phx(2026, 11, 23, 9)) == phx(2026, 11, 23, 17)
    assert st.next_close(phx(2026, 11, 21, 9)) == phx(2026, 11, 23, 17)
    assert st.next_close(phx(2026, 11, 23, 17)) == phx(2026, 11, 24, 17)
    assert st.open_intervals(phx(2026, 11, 25, 12), phx(2026, 11, 30, 9)) == [
        (phx(2026, 11, 25, 12), phx(2026, 11, 25, 17)),
        (phx(2026, 11, 27, 8), phx(2026, 11, 27, 17)),
        (phx(2026, 11, 30, 8), phx(2026, 11, 30, 9)),
    ]
    assert st.open_intervals(phx(2026, 11, 28), phx(2026, 11, 29)) == []
    assert st.open_intervals(phx(2026, 11, 30), phx(2026, 11, 23)) == []


def test_results_are_aware_in_the_calendar_zone_whatever_the_input_zone(st: Calendar) -> None:
    start = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # 15:00 in Phoenix
    got = st.add(start, 4 * H)
    assert got == phx(2026, 11, 23, 10)
    assert got.tzinfo == PHX


def test_pendulum_datetimes_are_accepted(st: Calendar) -> None:
    start = pendulum.datetime(2026, 11, 20, 15, tz="America/Phoenix")
    assert st.add(start, 4 * H) == phx(2026, 11, 23, 10)
    assert st.elapsed(start, pendulum.datetime(2026, 11, 23, 17, 0, 0, 1, tz="UTC")) == timedelta(
        hours=4, microseconds=1
    )
    assert st.add(start, pendulum.duration(hours=4)) == phx(2026, 11, 23, 10)


def test_microseconds_are_exact(st: Calendar) -> None:
    start = phx(2026, 11, 23, 8, 0, 0, 1)
    got = st.add(start, timedelta(hours=9, microseconds=-2))
    assert got == phx(2026, 11, 23, 16, 59, 59, 999999)
    assert st.add(start, timedelta(hours=9)) == phx(2026, 11, 24, 8, 0, 0, 1)


# -- arguments ------------------------------------------------------------------------------


def test_naive_datetimes_raise_type_error_naming_the_argument(st: Calendar) -> None:
    naive = datetime(2026, 11, 20, 15)
    aware = phx(2026, 11, 20, 15)
    for call, argument in [
        (lambda: st.add(naive, H), "start"),
        (lambda: st.subtract(naive, H), "end"),
        (lambda: st.elapsed(naive, aware), "a"),
        (lambda: st.elapsed(aware, naive), "b"),
        (lambda: st.is_open(naive), "t"),
        (lambda: st.next_open(naive), "t"),
        (lambda: st.next_close(naive), "t"),
        (lambda: st.open_intervals(aware, naive), "b"),
        (lambda: st.add(pendulum.naive(2026, 11, 20, 15), H), "start"),
        (lambda: st.add(date(2026, 11, 20), H), "start"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(TypeError, match=f"^{argument} "):
            call()


def test_negative_durations_raise_input_error_naming_the_argument(st: Calendar) -> None:
    for call in (
        lambda: st.add(phx(2026, 11, 20, 15), -H),
        lambda: st.subtract(phx(2026, 11, 20, 15), timedelta(microseconds=-1)),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.field == "duration"
        assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError, match="duration"):
        st.add(phx(2026, 11, 20, 15), 4)  # type: ignore[arg-type]


# -- DST ------------------------------------------------------------------------------------

DST_CAL = """
name = "dst"
timezone = "{tz}"
[hours]
mon = ["00:00-08:00"]
tue = ["00:00-08:00"]
wed = ["00:00-08:00"]
thu = ["00:00-08:00"]
fri = ["00:00-08:00"]
sat = ["00:00-08:00"]
sun = ["00:00-08:00"]
"""


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), timedelta(hours=7)),
        ("America/New_York", date(2026, 11, 1), timedelta(hours=9)),
        ("America/New_York", date(2026, 3, 9), timedelta(hours=8)),
        ("Europe/London", date(2026, 3, 29), timedelta(hours=7)),
        ("Europe/London", date(2026, 10, 25), timedelta(hours=9)),
        ("Australia/Lord_Howe", date(2026, 10, 4), timedelta(hours=7, minutes=30)),
        ("Australia/Lord_Howe", date(2026, 4, 5), timedelta(hours=8, minutes=30)),
        ("Asia/Kathmandu", date(2026, 3, 8), timedelta(hours=8)),
        ("America/Phoenix", date(2026, 3, 8), timedelta(hours=8)),
    ],
)
def test_a_00_to_08_window_holds_real_elapsed_time(tz: str, day: date, hours: timedelta) -> None:
    cal = cal_from(DST_CAL.format(tz=tz))
    zone = ZoneInfo(tz)
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    assert cal.elapsed(midnight, next_midnight) == hours
    assert cal.open_intervals(midnight, next_midnight) == [
        (midnight, datetime(day.year, day.month, day.day, 8, tzinfo=zone))
    ]
    assert cal.add(midnight, hours) == datetime(day.year, day.month, day.day + 1, tzinfo=zone)


def test_windows_inside_the_gap_follow_zoneinfo_fold_0() -> None:
    cal = cal_from(
        """
        timezone = "America/New_York"
        [dates]
        "2026-03-08" = ["01:30-03:30"]
        "2026-11-01" = ["01:30-03:30"]
        "2026-03-15" = ["02:30-03:15"]
        """
    )
    # spring forward: 01:30 EST .. 03:30 EDT is one real hour
    spring = cal.open_intervals(datetime(2026, 3, 8, tzinfo=NY), datetime(2026, 3, 9, tzinfo=NY))
    assert spring == [
        (datetime(2026, 3, 8, 1, 30, tzinfo=NY), datetime(2026, 3, 8, 3, 30, tzinfo=NY))
    ]
    assert spring[0][1].astimezone(UTC) - spring[0][0].astimezone(UTC) == H
    # fall back: 01:30 is ambiguous -> its earlier instant (EDT); 03:30 EST: three real hours
    fall = cal.open_intervals(datetime(2026, 11, 1, tzinfo=NY), datetime(2026, 11, 2, tzinfo=NY))
    assert fall[0][0].utcoffset() == timedelta(hours=-4)
    assert fall[0][1].astimezone(UTC) - fall[0][0].astimezone(UTC) == 3 * H
    # a window starting in a gap that does not exist (not on a DST day) is a normal window
    assert cal.elapsed(datetime(2026, 3, 15, tzinfo=NY), datetime(2026, 3, 16, tzinfo=NY)) == (
        timedelta(minutes=45)
    )


def test_windows_in_the_gap_take_the_offset_from_before_it() -> None:
    cal = cal_from(
        """
        timezone = "America/New_York"
        [dates]
        "2026-03-08" = ["02:10-02:50", "09:00-10:00"]
        "2026-03-09" = ["09:00-10:00"]
        """
    )
    day = datetime(2026, 3, 8, tzinfo=NY)
    # both ends in the gap: 02:10 EST .. 02:50 EST = 03:10 .. 03:50 EDT
    assert cal.open_intervals(day, day + 5 * H) == [
        (datetime(2026, 3, 8, 3, 10, tzinfo=NY), datetime(2026, 3, 8, 3, 50, tzinfo=NY))
    ]
    empty = cal_from(
        """
        timezone = "America/New_York"
        [dates]
        "2026-03-08" = ["02:30-03:15", "09:00-10:00"]
        """
    )
    # 02:30 lands after the gap at 03:30 EDT, later than 03:15 EDT: an empty window
    assert empty.elapsed(day, day + 24 * H) == H


def test_overnight_shift_across_dst() -> None:
    cal = load_calendar("example-overnight-shift")
    # Friday 2026-03-06 22:00 EST .. Saturday 06:00 EST: 8h; Saturday-night has no shift
    fri = datetime(2026, 3, 6, 22, tzinfo=NY)
    assert cal.next_close(fri) == datetime(2026, 3, 7, 6, tzinfo=NY)
    # Sunday has no shift; Monday 2026-03-09 22:00 is after the change
    assert cal.next_open(datetime(2026, 3, 7, 6, tzinfo=NY)) == datetime(2026, 3, 9, 22, tzinfo=NY)
    sat_night = cal_from(
        """
        timezone = "America/New_York"
        [hours]
        sat = ["22:00-06:00"]
        """
    )
    start = datetime(2026, 3, 7, 22, tzinfo=NY)
    assert sat_night.next_close(start) == datetime(2026, 3, 8, 6, tzinfo=NY)
    assert sat_night.elapsed(start, start + 24 * H) == 7 * H
    fall = datetime(2026, 10, 31, 22, tzinfo=NY)
    assert sat_night.elapsed(fall, fall + 24 * H) == 9 * H
    # a ticket at Thursday 23:00 with 4h runs out inside the shift, Friday 03:00
    assert cal.add(datetime(2026, 3, 5, 23, tzinfo=NY), 4 * H) == datetime(2026, 3, 6, 3, tzinfo=NY)
    # the year-end closure
    assert not cal.is_open(datetime(2026, 12, 25, 2, tzinfo=NY))
    assert cal.next_open(datetime(2026, 12, 24, 23, tzinfo=NY)) == datetime(
        2026, 12, 28, 22, tzinfo=NY
    )


def test_lunch_break_example() -> None:
    cal = load_calendar("example-lunch-break")
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 3, 27, 16, tzinfo=london)  # Friday 16:00 GMT; clocks change Sunday
    got = cal.add(start, 4 * H)
    assert got == datetime(2026, 3, 30, 11, 30, tzinfo=london)
    assert got.utcoffset() == H
    assert (
        cal.elapsed(
            datetime(2026, 3, 30, 12, tzinfo=london), datetime(2026, 3, 30, 14, tzinfo=london)
        )
        == H
    )
    assert cal.add(datetime(2026, 12, 24, 11, tzinfo=london), 2 * H) == datetime(
        2026, 12, 29, 9, 30, tzinfo=london
    )  # half day, Christmas, Boxing Day (Sat) observed on Monday 28th


def test_kathmandu_offset_is_exact() -> None:
    cal = cal_from(DST_CAL.format(tz="Asia/Kathmandu"))
    ktm = ZoneInfo("Asia/Kathmandu")
    start = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 06:45 in Kathmandu
    got = cal.add(start, 3 * H)
    assert got == datetime(2026, 6, 2, 1, 45, tzinfo=ktm)
    assert got.utcoffset() == timedelta(hours=5, minutes=45)
    assert cal.next_close(start) == datetime(2026, 6, 1, 2, 15, tzinfo=UTC)


# -- file features --------------------------------------------------------------------------


def test_dates_overrides_closures_and_overlaps() -> None:
    cal = cal_from(
        """
        name = "features"
        timezone = "America/Phoenix"
        [hours]
        mon = ["08:00-12:00", "11:00-13:00", "13:00-17:00"]   # overlapping and touching: 08-17
        tue = ["08:00-17:00"]
        [holidays]
        country = "US"
        subdiv = "AZ"
        categories = ["public"]
        [dates]
        "2026-11-26" = ["09:00-13:00"]    # open on Thanksgiving
        "2026-11-24" = []                 # closed on a Tuesday
        "2026-11-28" = ["10:00-10:30:30"] # a Saturday, seconds
        [[closures]]
        start = "2026-11-23T10:00"
        end = "2026-11-23T11:00:00"
        reason = "all-hands"
        """
    )
    assert cal.title == "features"
    assert cal.open_intervals(phx(2026, 11, 23), phx(2026, 11, 30)) == [
        (phx(2026, 11, 23, 8), phx(2026, 11, 23, 10)),
        (phx(2026, 11, 23, 11), phx(2026, 11, 23, 17)),
        (phx(2026, 11, 26, 9), phx(2026, 11, 26, 13)),
        (phx(2026, 11, 28, 10), phx(2026, 11, 28, 10, 30, 30)),
    ]
    assert cal.next_close(phx(2026, 11, 23, 9)) == phx(2026, 11, 23, 10)


def test_whole_days_and_overnight_windows_merge_into_one_interval() -> None:
    cal = cal_from(
        """
        timezone = "UTC"
        [hours]
        wed = ["08:00-08:00"]   # end == start: 24 hours, to Thursday 08:00
        fri = ["22:00-06:00"]
        sat = ["00:00-24:00"]
        sun = ["00:00-00:00"]
        mon = ["00:00-08:00"]
        """
    )
    fri = datetime(2026, 11, 20, 22, tzinfo=UTC)
    assert cal.next_close(fri) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert cal.open_intervals(fri - H, fri + 100 * H) == [
        (datetime(2026, 11, 20, 22, tzinfo=UTC), datetime(2026, 11, 23, 8, tzinfo=UTC))
    ]
    wed = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert cal.next_close(wed) == wed + 24 * H
    assert cal.elapsed(wed - 24 * H, wed + 48 * H) == 24 * H


def test_24x7_is_always_open() -> None:
    cal = load_calendar("24x7")
    start = datetime(2026, 11, 26, 3, 17, tzinfo=PHX)
    assert cal.add(start, H) == start + H
    assert cal.elapsed(start, start + 1000 * H) == 1000 * H
    assert cal.subtract(start, H) == start - H
    assert cal.is_open(start)
    with pytest.raises(CalendarError, match="never closes"):
        cal.next_close(start)


def test_far_future_and_long_durations(st: Calendar) -> None:
    start = phx(2026, 11, 20, 15)
    far = st.add(start, 20_000 * H)  # about ten years of business hours
    assert far == phx(2035, 10, 15, 8)  # about 2,250 business hours a year
    assert st.elapsed(start, far) == 20_000 * H
    assert st.subtract(far, 20_000 * H) == start
    assert st.add(phx(2400, 3, 1, 9), 4 * H) == phx(2400, 3, 1, 13)  # a Wednesday
    assert st.add(phx(1950, 3, 1, 16), 4 * H) == phx(1950, 3, 2, 11)  # Wednesday, before 1970


# -- "no open time reachable" ----------------------------------------------------------------


def test_a_calendar_without_hours_raises_at_once() -> None:
    cal = cal_from('timezone = "UTC"\n[hours]\n', "closed")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert not cal.is_open(t)
    assert cal.elapsed(t, t + 1000 * H) == timedelta(0)
    for call in (
        lambda: cal.add(t, H),
        lambda: cal.subtract(t, H),
        lambda: cal.next_open(t),
        lambda: cal.next_close(t),
        lambda: cal.add_many(np.array(["2026-01-01"], dtype="datetime64[s]"), H),
    ):
        began = time.perf_counter()
        with pytest.raises(CalendarError, match=r"closed\.toml.*no open time"):
            call()
        assert time.perf_counter() - began < 30  # "at once": no search to the end of time


def test_a_calendar_open_only_on_some_dates_raises_beyond_them() -> None:
    cal = cal_from(
        """
        timezone = "Europe/London"
        [dates]
        "2026-06-01" = ["09:00-10:00"]
        "2027-06-01" = ["09:00-10:00"]
        """,
        "dates-only",
    )
    london = ZoneInfo("Europe/London")
    assert cal.add(datetime(2026, 1, 1, tzinfo=UTC), 90 * timedelta(minutes=1)) == datetime(
        2027, 6, 1, 9, 30, tzinfo=london
    )
    with pytest.raises(CalendarError, match="no open time after"):
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), 2 * H)
    with pytest.raises(CalendarError, match="no open time after"):
        cal.next_open(datetime(2027, 6, 1, 10, tzinfo=london))
    with pytest.raises(CalendarError, match="no open time before"):
        cal.subtract(datetime(2026, 6, 1, 9, 30, tzinfo=london), H)
    assert cal.subtract(datetime(2027, 6, 1, 9, 30, tzinfo=london), H) == datetime(
        2026, 6, 1, 9, 30, tzinfo=london
    )


# -- errors in files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ('timezone = "Mars/Olympus"', "timezone", "Mars/Olympus"),
        ('timezone = "../../etc/passwd"', "timezone", "../../etc/passwd"),
        ("name = 'x'", "timezone", "None"),
        ('timezone = "UTC"\n[hours]\nmon = ["8-17"]', "hours.mon[0]", "8-17"),
        ('timezone = "UTC"\n[hours]\nmon = ["08:00-17:60"]', "hours.mon[0]", "08:00-17:60"),
        ('timezone = "UTC"\n[hours]\nmon = ["24:00-08:00"]', "hours.mon[0]", "24:00-08:00"),
        ('timezone = "UTC"\n[hours]\nmon = ["08:00-24:30"]', "hours.mon[0]", "08:00-24:30"),
        ('timezone = "UTC"\n[hours]\nmon = ["25:00-26:00"]', "hours.mon[0]", "25:00-26:00"),
        ('timezone = "UTC"\n[hours]\nmon = "08:00-17:00"', "hours.mon", "08:00-17:00"),
        ('timezone = "UTC"\n[hours]\nmon = [800]', "hours.mon[0]", "800"),
        ('timezone = "UTC"\n[hours]\nmonnday = ["08:00-17:00"]', "hours.monnday", "monnday"),
        ('timezone = "UTC"\n[hours]\nmon = []\nmonday = []', "hours.monday", "monday"),
        ('timezone = "UTC"\n[holidays]\ncountry = "XX"', "holidays.country", "XX"),
        ('timezone = "UTC"\n[holidays]\ncountry = "US"\nsubdiv = "ZZ"', "holidays.subdiv", "ZZ"),
        (
            'timezone = "UTC"\n[holidays]\ncountry = "US"\ncategories = ["nope"]',
            "holidays.categories",
            "nope",
        ),
        (
            'timezone = "UTC"\n[holidays]\ncountry = "US"\nregion = "AZ"',
            "holidays.region",
            "region",
        ),
        ('timezone = "UTC"\nholiday = "US"', "holiday", "holiday"),
        ('timezone = "UTC"\n[dates]\n"2026-02-30" = []', "dates.2026-02-30", "2026-02-30"),
        ('timezone = "UTC"\n[dates]\n"26-12-24" = []', "dates.26-12-24", "26-12-24"),
        ('timezone = "UTC"\n[dates]\n"2026-12-24" = ["8:00"]', "dates.2026-12-24[0]", "8:00"),
        (
            'timezone = "UTC"\n[[closures]]\nstart = "2026-12-24T12:00"\nend = "tomorrow"',
            "closures[0].end",
            "tomorrow",
        ),
        (
            'timezone = "UTC"\n[[closures]]\nstart = "2026-12-24T12:00"\nend = "2026-12-23T12:00"',
            "closures[0].end",
            "2026-12-23T12:00",
        ),
        (
            'timezone = "UTC"\n[[closures]]\nstart = "2026-12-24"\nend = "2026-12-25"\nwhy = 1',
            "closures[0].why",
            "why",
        ),
        ('timezone = "UTC"\n[[closures]]\nend = "2026-12-24T12:00"', "closures[0].start", "None"),
    ],
)
def test_file_errors_name_the_file_the_key_and_the_value(
    tmp_path: Path, body: str, key: str, value: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(body + "\n")
    with pytest.raises(CalendarError) as info:
        load_calendar(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert value in message
    assert info.value.field == key
    assert isinstance(info.value, ValueError)


def test_invalid_toml_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('timezone = "UTC\n')
    with pytest.raises(CalendarError, match=r"syntax\.toml.*invalid TOML"):
        load_calendar(path)
    with pytest.raises(CalendarError, match=r"missing\.toml"):
        load_calendar(tmp_path / "missing.toml")


def test_unknown_calendar_names_are_named() -> None:
    with pytest.raises(CalendarError) as info:
        load_calendar("no-such-calendar")
    assert "no-such-calendar" in str(info.value)
    assert "smartertools" in str(info.value)  # lists the known ones
    assert info.value.field == "calendar"
    with pytest.raises(CalendarError):
        load_calendar("")


# -- lookup and caching ---------------------------------------------------------------------


def test_lookup_order_caching_and_reloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "smartertools.toml").write_text('name = "shadow"\ntimezone = "UTC"\n[hours]\n')
    (second / "night.toml").write_text('timezone = "UTC"\n[hours]\nmon = ["22:00-06:00"]\n')
    monkeypatch.setenv("SLA_ENGINE_CALENDARS", f"{first}:{second}")
    assert load_calendar("smartertools").title == "shadow"
    assert "night" in list_calendars() and "24x7" in list_calendars()
    night = load_calendar("night")
    assert night.name == "night"
    assert load_calendar("night") is night
    assert load_calendar(second / "night.toml") is night
    assert load_calendar(str(second / "night.toml")) is night
    path = second / "night.toml"
    path.write_text('timezone = "UTC"\n[hours]\ntue = ["22:00-06:00"]\n')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reloaded = load_calendar("night")
    assert reloaded is not night
    assert reloaded.is_open(datetime(2026, 11, 24, 23, tzinfo=UTC))
    monkeypatch.delenv("SLA_ENGINE_CALENDARS")
    assert load_calendar("smartertools").title == "SmarterTools support hours"
    assert "night" not in list_calendars()


def test_list_calendars_lists_the_shipped_files() -> None:
    names = list_calendars()
    for name in ("smartertools", "24x7", "example-lunch-break", "example-overnight-shift"):
        assert name in names
        load_calendar(name)


# -- vectorised API -------------------------------------------------------------------------


def test_add_many_equals_add_for_any_unit_and_durations(st: Calendar) -> None:
    rng = np.random.default_rng(7)
    base = np.datetime64("2026-11-01T00:00:00", "us")
    micros = rng.integers(0, 90 * 86_400_000_000, 2000)
    starts = base + micros.astype("timedelta64[us]")
    durations = rng.integers(0, 40 * 3_600_000_000, 2000).astype("timedelta64[us]")
    got = st.add_many(starts, durations)
    assert got.dtype == np.dtype("datetime64[us]")
    for s, d, g in zip(starts[:300], durations[:300], got[:300], strict=True):
        start = datetime.fromisoformat(str(s)).replace(tzinfo=UTC)
        expected = st.add(start, timedelta(microseconds=int(d.astype(np.int64))))
        assert g == np.datetime64(expected.astimezone(UTC).replace(tzinfo=None), "us")
    back = st.elapsed_many(starts, got)
    assert back.dtype == np.dtype("timedelta64[us]")
    assert (back == durations).all()
    assert (st.elapsed_many(got, starts) == -durations).all()
    as_ns = st.add_many(starts.astype("datetime64[ns]"), np.timedelta64(4, "h"))
    as_s = st.add_many(starts.astype("datetime64[s]"), timedelta(hours=4))
    assert (as_ns == st.add_many(starts, timedelta(hours=4))).all()
    assert (
        as_s == st.add_many(starts.astype("datetime64[s]").astype("datetime64[us]"), 4 * H)
    ).all()
    grid = st.add_many(starts.reshape(40, 50), durations.reshape(40, 50))
    assert grid.shape == (40, 50) and (grid.ravel() == got).all()
    assert st.add_many(np.array([], dtype="datetime64[us]"), H).shape == (0,)


def test_add_many_rejects_bad_input(st: Calendar) -> None:
    starts = np.array(["2026-11-20T22:00"], dtype="datetime64[m]")
    with pytest.raises(InputError) as info:
        st.add_many(starts, np.array([-1], dtype="timedelta64[s]"))
    assert info.value.field == "durations"
    with pytest.raises(InputError) as info:
        st.add_many(np.array(["NaT"], dtype="datetime64[us]"), H)
    assert info.value.field == "starts"
    with pytest.raises(TypeError, match="starts"):
        st.add_many(np.array([1.5]), H)
    with pytest.raises(InputError) as info:
        st.add_many(np.repeat(starts, 3), np.array([1, 2], dtype="timedelta64[h]"))
    assert info.value.field == "durations"
    with pytest.raises(InputError) as info:
        st.elapsed_many(np.repeat(starts, 3), np.repeat(starts, 2))
    assert info.value.field == "ends"
    with pytest.raises(InputError, match="months and years"):
        st.add_many(starts, np.timedelta64(1, "M"))
    with pytest.raises(InputError, match="NaT"):
        st.add(phx(2026, 11, 20, 15), np.timedelta64("NaT"))  # type: ignore[arg-type]
    assert st.add(phx(2026, 11, 20, 15), np.timedelta64(4, "h")) == phx(2026, 11, 23, 10)  # type: ignore[arg-type]
    aware = [phx(2026, 11, 20, 15)]
    assert st.add_many(aware, 4 * H)[0] == np.datetime64("2026-11-23T17:00", "us")


def test_fast_float_conversion_of_results_is_exact(st: Calendar) -> None:
    rng = np.random.default_rng(3)
    edges = [0, 1, -1, 999_999, 1_000_001, 2**32 * 1_000_000 - 1, -(2**32) * 1_000_000 + 1]
    values = [*edges, *rng.integers(-(2**32) * 10**6 + 1, 2**32 * 10**6 - 1, 20_000).tolist()]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for us in values:
        assert st._datetime(us) == epoch + timedelta(microseconds=us), us


def test_distant_queries_compile_only_what_they_touch_and_still_agree(tmp_path: Path) -> None:
    path = tmp_path / "fresh.toml"
    path.write_text(
        'timezone = "America/Phoenix"\n[hours]\nmon = ["08:00-17:00"]\nwed = ["08:00-17:00"]\n'
    )
    cal = load_calendar(path)
    near, far = phx(2026, 11, 23, 9), phx(2090, 11, 20, 9)  # a Monday
    assert cal.add(far, 7 * H) == phx(2090, 11, 20, 16)
    assert cal.add(near, 8 * H) == phx(2026, 11, 25, 8)  # runs out at the close
    assert len(cal.timeline.compiled_years()) <= 4
    weeks = (far - near).days // 7
    assert cal.elapsed(near, far) == weeks * 18 * H
    assert cal.subtract(far, weeks * 18 * H) == near
    assert cal.add(near, weeks * 18 * H) == far


@given(
    hst.lists(hst.integers(-(10**6), 10**6), max_size=60, unique=True),
    hst.lists(hst.integers(-(10**6) - 10, 10**6 + 10), max_size=60),
    hst.integers(1, 6),
)
def test_grid_index_equals_searchsorted(values: list[int], probes: list[int], cells: int) -> None:
    sorted_values = np.array(sorted(values), dtype=np.int64)
    x = np.array(probes + values + [v - 1 for v in values], dtype=np.int64)
    index = GridIndex(sorted_values, cells)
    assert (index.search_right(x) == np.searchsorted(sorted_values, x, side="right")).all()


def test_a_long_duration_on_a_dates_only_calendar_stops_at_the_bound() -> None:
    cal = cal_from('timezone = "UTC"\n[dates]\n"2026-06-01" = ["09:00-10:00"]\n', "once")
    began = time.perf_counter()
    with pytest.raises(CalendarError, match="no open time after"):
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), 10_000 * H)
    assert max(cal.timeline.compiled_years()) <= 2026 + 6
    assert time.perf_counter() - began < 30  # "at once": no search to the end of time


def test_concurrent_first_queries_agree_with_sequential_ones(tmp_path: Path) -> None:
    body = (Path(__file__).resolve().parents[2] / "calendars" / "smartertools.toml").read_text()
    (tmp_path / "a.toml").write_text(body)
    (tmp_path / "b.toml").write_text(body)
    shared, alone = load_calendar(tmp_path / "a.toml"), load_calendar(tmp_path / "b.toml")
    rng = np.random.default_rng(11)
    starts = [
        phx(2020, 1, 1) + timedelta(minutes=int(m))
        for m in rng.integers(0, 60 * 24 * 365 * 12, 400)
    ]
    budgets = [timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 2000, 400)]

    def work(k: int) -> list[datetime]:
        return [shared.add(s, d) for s, d in zip(starts[k::8], budgets[k::8], strict=True)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for k, got in enumerate(results):
        expected = [alone.add(s, d) for s, d in zip(starts[k::8], budgets[k::8], strict=True)]
        assert got == expected


def test_fold_of_an_ambiguous_input_is_respected() -> None:
    cal = load_calendar("24x7")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)  # EDT
    second = first.replace(fold=1)  # EST, an hour later
    assert cal.elapsed(first, second) == H
    # (compared in UTC: Python never equates an instant in a fold with another zone's time)
    assert cal.add(first, H) == second.astimezone(UTC)
    assert cal.add(first, H).astimezone(NY).fold == 1
    assert cal.add(first, H).astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_intervals_that_cross_new_year_are_one_interval() -> None:
    cal = cal_from('timezone = "UTC"\n[hours]\nthu = ["22:00-06:00"]\nfri = ["00:00-24:00"]\n')
    eve = datetime(2026, 12, 31, 22, tzinfo=UTC)  # a Thursday
    assert cal.next_close(eve) == datetime(2027, 1, 2, tzinfo=UTC)
    assert cal.open_intervals(eve - H, eve + 30 * H) == [(eve, eve + 26 * H)]
    one_am = datetime(2027, 1, 1, 1, tzinfo=UTC)
    assert cal.subtract(one_am, 2 * H) == eve + H
    assert cal.subtract(one_am, 3 * H) == datetime(2026, 12, 26, tzinfo=UTC)  # previous close
    always = load_calendar("24x7")
    assert always.open_intervals(eve, eve + 4 * H) == [(eve, eve + 4 * H)]


def test_results_in_the_repeated_hour_compare_as_instants() -> None:
    """Python's own == is False across zones in a fall-back hour; results still compare right."""
    cal = cal_from(
        'name = "ny"\ntimezone = "America/New_York"\n[hours]\n'
        + "".join(f'{d} = ["00:00-24:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri"))
        + 'sat = ["00:00-24:00"]\nsun = ["00:00-24:00"]\n'
    )
    start = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT, an hour before clocks go back
    second_0130 = cal.add(start, timedelta(minutes=90))  # 06:30Z = 01:30 EST (fold=1)
    first_0145 = cal.add(start, timedelta(minutes=45))  # 05:45Z = 01:45 EDT (fold=0)
    utc = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert (second_0130.hour, second_0130.minute, second_0130.fold) == (1, 30, 1)
    assert second_0130 == utc and utc == second_0130
    assert hash(second_0130) == hash(utc) and {second_0130} == {utc}
    assert first_0145 < second_0130 and second_0130 > first_0145
    assert second_0130 != first_0145
    assert cal.add(second_0130, timedelta(0)) == utc
