"""Calendar versions (SPEC section 6): worked examples of each case the property tests cover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sla_engine import Calendar, CalendarError
from sla_engine.core.calendar import calendar_from_spec, versioned_calendar
from sla_engine.core.calendar_file import parse_calendar_text

BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours_cal(zone: str, windows: Mapping[str, Sequence[str]] | str, name: str = "v") -> Calendar:
    if isinstance(windows, str):
        windows = dict.fromkeys(WEEKDAYS[:5], (windows,))
    body = "\n".join(f"{day} = {list(w)!r}".replace("'", '"') for day, w in windows.items())
    text = f'name = "{name}"\ntimezone = "{zone}"\n[hours]\n{body}\n'
    return calendar_from_spec(parse_calendar_text(text, f"{name}.toml"), name)


def utc_pairs(pairs: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in pairs]


def test_a_change_inside_an_open_window_keeps_one_interval_and_counts_each_side() -> None:
    day, later = (
        hours_cal("Europe/Berlin", "08:00-17:00"),
        hours_cal("Europe/Berlin", "09:00-18:00"),
    )
    change = datetime(2026, 3, 2, 12, tzinfo=BERLIN)  # Monday noon
    cal = day.with_version(change, later)
    monday = cal.open_intervals(
        datetime(2026, 3, 2, tzinfo=BERLIN), datetime(2026, 3, 3, tzinfo=BERLIN)
    )
    assert monday == [
        (datetime(2026, 3, 2, 8, tzinfo=BERLIN), datetime(2026, 3, 2, 18, tzinfo=BERLIN))
    ]
    assert cal.next_close(datetime(2026, 3, 2, 11, tzinfo=BERLIN)) == datetime(
        2026, 3, 2, 18, tzinfo=BERLIN
    )
    assert cal.is_open(change) and cal.is_open(change - timedelta(microseconds=1))
    # Tuesday follows the new hours only
    assert not cal.is_open(datetime(2026, 3, 3, 8, 30, tzinfo=BERLIN))
    assert cal.add(datetime(2026, 3, 2, 8, tzinfo=BERLIN), 10 * H) == datetime(
        2026, 3, 3, 9, tzinfo=BERLIN
    )  # runs out at Monday's (new) closing: Tuesday's opening
    assert cal.subtract(datetime(2026, 3, 3, 10, tzinfo=BERLIN), 10.5 * H) == datetime(
        2026, 3, 2, 8, 30, tzinfo=BERLIN
    )
    # before the change nothing moved
    old = datetime(2026, 2, 23, 8, tzinfo=BERLIN)
    assert cal.add(old, 4 * H) == day.add(old, 4 * H)
    assert cal.elapsed(old, change) == day.elapsed(old, change)


def test_a_shorter_day_from_the_middle_of_a_window() -> None:
    full, short = (
        hours_cal("Europe/Berlin", "08:00-17:00"),
        hours_cal("Europe/Berlin", "08:00-13:00"),
    )
    change = datetime(2026, 3, 2, 15, tzinfo=BERLIN)  # after the new closing time
    cal = full.with_version(change, short)
    assert cal.next_close(datetime(2026, 3, 2, 9, tzinfo=BERLIN)) == change
    assert not cal.is_open(change)
    assert (
        cal.elapsed(datetime(2026, 3, 2, tzinfo=BERLIN), datetime(2026, 3, 4, tzinfo=BERLIN))
        == (7 + 5) * H
    )
    # the budget runs out exactly at the change, which closes: the next opening
    assert cal.add(datetime(2026, 3, 2, 8, tzinfo=BERLIN), 7 * H) == datetime(
        2026, 3, 3, 8, tzinfo=BERLIN
    )


def test_a_change_between_two_zones_answers_in_the_zone_in_force_at_the_result() -> None:
    berlin = hours_cal("Europe/Berlin", "09:00-17:00", "berlin")
    sydney = hours_cal("Australia/Sydney", "09:00-17:00", "sydney")
    handover = datetime(2026, 3, 3, 12, tzinfo=BERLIN)  # Tuesday noon Berlin = 22:00 Sydney
    cal = berlin.with_version(handover, sydney)
    assert cal.tz == SYDNEY and cal.name == "berlin"
    start = datetime(2026, 3, 3, 9, tzinfo=BERLIN)
    end = cal.add(start, 4 * H)  # 3 h in Berlin, then 1 h of Wednesday in Sydney
    assert end == datetime(2026, 3, 4, 10, tzinfo=SYDNEY)
    assert end.tzinfo == SYDNEY
    assert cal.elapsed(start, end) == 4 * H
    early = cal.add(start, 2 * H)
    assert early == datetime(2026, 3, 3, 11, tzinfo=BERLIN) and early.tzinfo == BERLIN
    back = cal.subtract(end, 4 * H)  # lands on the previous closing: Monday's, in Berlin
    assert back == datetime(2026, 3, 2, 17, tzinfo=BERLIN) and back.tzinfo == BERLIN
    pairs = cal.open_intervals(start, end)
    assert [(a.tzinfo, b.tzinfo) for a, b in pairs] == [(BERLIN, SYDNEY), (SYDNEY, SYDNEY)]
    assert cal.next_open(handover) == datetime(2026, 3, 4, 9, tzinfo=SYDNEY)
    assert cal.version_at(start).spec.timezone == BERLIN
    assert cal.version_at(handover).spec.timezone == SYDNEY


def test_a_change_on_the_night_clocks_spring_forward() -> None:
    always = hours_cal("America/New_York", dict.fromkeys(WEEKDAYS, ("00:00-24:00",)))
    mornings = hours_cal("America/New_York", {"sun": ["00:00-08:00"]})
    change = datetime(2026, 3, 8, 1, 30, tzinfo=NY)  # 01:30 EST, half an hour before the gap
    cal = always.with_version(change, mornings)
    midnight = datetime(2026, 3, 8, tzinfo=NY)
    # 1.5 h of the old 24x7, then 01:30 EST .. 08:00 EDT: 5.5 h; one interval
    assert cal.elapsed(midnight, datetime(2026, 3, 8, 12, tzinfo=NY)) == 7 * H
    assert utc_pairs(cal.open_intervals(midnight, datetime(2026, 3, 8, 12, tzinfo=NY))) == [
        (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC))
    ]
    assert cal.add(midnight, 7 * H) == datetime(2026, 3, 15, 0, tzinfo=NY)  # next Sunday
    assert cal.add(midnight, 6 * H) == datetime(2026, 3, 8, 7, tzinfo=NY)


def test_a_change_inside_the_repeated_hour_of_the_night_clocks_fall_back() -> None:
    closed_nights = hours_cal("America/New_York", dict.fromkeys(WEEKDAYS, ("08:00-17:00",)))
    always = hours_cal("America/New_York", dict.fromkeys(WEEKDAYS, ("00:00-24:00",)))
    second_130 = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # 01:30 EST = 06:30 UTC
    assert second_130.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    cal = closed_nights.with_version(second_130, always)
    midnight = datetime(2026, 11, 1, tzinfo=NY)
    assert not cal.is_open(datetime(2026, 11, 1, 1, 30, tzinfo=NY))  # the first 01:30 (EDT)
    assert cal.is_open(second_130)
    assert cal.next_open(midnight) == second_130
    assert cal.elapsed(midnight, datetime(2026, 11, 1, 3, tzinfo=NY)) == 90 * timedelta(minutes=1)


def test_versions_chain_and_must_move_forward() -> None:
    a = hours_cal("Europe/Berlin", "08:00-17:00", "a")
    b = hours_cal("Europe/Berlin", "08:00-13:00", "b")
    c = hours_cal("Australia/Sydney", "09:00-17:00", "c")
    t1, t2 = datetime(2026, 3, 2, tzinfo=BERLIN), datetime(2026, 3, 9, tzinfo=BERLIN)
    cal = a.with_version(t1, b).with_version(t2, c)
    assert [v.effective_from for v in cal.versions] == [None, t1, t2]
    assert [v.spec.title for v in cal.versions] == ["a", "b", "c"]
    assert cal.versions[2].effective_from.tzinfo == SYDNEY  # type: ignore[union-attr]
    for bad in (t2, t1, t2 - H):
        with pytest.raises(CalendarError, match="effective_from") as caught:
            cal.with_version(bad, a)
        assert caught.value.field == "effective_from"
    with pytest.raises(TypeError, match="effective_from"):
        a.with_version(datetime(2026, 3, 2), b)
    same = versioned_calendar("team", [(None, a.spec), (t1, b.spec), (t2, c)])
    assert same.name == "team" and len(same.versions) == 3
    monday = datetime(2026, 3, 2, 8, tzinfo=BERLIN)
    for probe in (monday - 30 * 24 * H, monday, monday + 7 * 24 * H):
        assert same.add(probe, 12 * H) == cal.add(probe, 12 * H)
    with pytest.raises(CalendarError, match="effective_from"):
        versioned_calendar("x", [(t1, a.spec)])
    with pytest.raises(CalendarError, match="effective_from"):
        versioned_calendar("x", [(None, a.spec), (None, b.spec)])
    with pytest.raises(CalendarError, match="effective_from"):
        versioned_calendar("x", [(None, a.spec), (t2, b.spec), (t1, c.spec)])


def test_a_versioned_other_contributes_the_versions_in_force_from_the_change_on() -> None:
    a = hours_cal("Europe/Berlin", "08:00-17:00", "a")
    b = hours_cal("Europe/Berlin", "08:00-13:00", "b")
    c = hours_cal("Europe/Berlin", "10:00-12:00", "c")
    t1, t2, t3 = (datetime(2026, 3, d, tzinfo=BERLIN) for d in (2, 9, 16))
    other = a.with_version(t1, b).with_version(t3, c)
    cal = c.with_version(t2, other)  # c, then other from t2: b until t3, c after
    assert [(v.effective_from, v.spec.title) for v in cal.versions] == [
        (None, "c"),
        (t2, "b"),
        (t3, "c"),
    ]


def test_vectorised_calls_agree_with_the_scalar_ones_across_ten_versions() -> None:
    zones = ["Europe/Berlin", "Australia/Sydney", "America/New_York", "Asia/Kathmandu"]
    cal = hours_cal(zones[0], "08:00-17:00")
    start = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    for index in range(1, 10):
        other = hours_cal(zones[index % 4], f"{8 + index % 3:02d}:00-{13 + index % 5}:30")
        cal = cal.with_version(start + index * timedelta(days=3, hours=5), other)
    assert len(cal.versions) == 10
    rng = np.random.default_rng(7)
    offsets = rng.integers(-5 * 86_400, 40 * 86_400, 300) * 1_000_000
    starts = np.datetime64("2026-01-05T10:15", "us") + offsets.astype("timedelta64[us]")
    spans = (rng.integers(0, 30 * 3600, 300) * 1_000_000).astype("timedelta64[us]")
    points = [datetime.fromisoformat(str(s)).replace(tzinfo=UTC) for s in starts]
    got = cal.add_many(starts, spans)
    expected = [cal.add(p, d.item()) for p, d in zip(points, spans, strict=True)]
    assert got.tolist() == [e.astimezone(UTC).replace(tzinfo=None) for e in expected]
    ends = np.roll(starts, 1)
    elapsed = cal.elapsed_many(starts, ends)
    assert elapsed.tolist() == [
        cal.elapsed(p, q) for p, q in zip(points, np.roll(np.array(points), 1), strict=True)
    ]


def test_a_version_that_never_opens_raises_instead_of_hanging() -> None:
    open_cal = hours_cal("Europe/Berlin", "08:00-17:00")
    never = calendar_from_spec(
        parse_calendar_text('timezone = "Europe/Berlin"\n', "never.toml"), "never"
    )
    change = datetime(2026, 3, 2, 12, tzinfo=BERLIN)
    closing = open_cal.with_version(change, never)
    almost = 4 * H - timedelta(microseconds=1)
    assert closing.add(datetime(2026, 3, 2, 8, tzinfo=BERLIN), almost) == change - (4 * H - almost)
    with pytest.raises(CalendarError, match="no open time after"):  # no later opening to land on
        closing.add(datetime(2026, 3, 2, 8, tzinfo=BERLIN), 4 * H)
    with pytest.raises(CalendarError, match="no open time after"):
        closing.next_open(change)
    assert closing.subtract(datetime(2040, 1, 1, tzinfo=UTC), H) == change - H
    assert closing.next_close(change - H) == change
    # and the other way round: closed until the change, then open
    opening = never.with_version(change, open_cal)
    assert opening.next_open(datetime(2000, 1, 1, tzinfo=UTC)) == change
    assert opening.add(datetime(2000, 1, 1, tzinfo=UTC), H) == change + H
    with pytest.raises(CalendarError, match="no open time before"):
        opening.subtract(change + H, 2 * H)
    always = hours_cal("Europe/Berlin", dict.fromkeys(WEEKDAYS, ("00:00-24:00",)))
    with pytest.raises(CalendarError, match="never closes"):
        open_cal.with_version(change, always).next_close(change)
    assert always.with_version(change, open_cal).next_close(
        datetime(1999, 1, 1, tzinfo=UTC)
    ) == datetime(2026, 3, 2, 17, tzinfo=BERLIN)


def test_a_versioned_calendar_shares_its_versions_compiled_years() -> None:
    a = hours_cal("Europe/Berlin", "08:00-17:00", "a")
    b = hours_cal("Europe/Berlin", "08:00-13:00", "b")
    change = datetime(2026, 6, 1, tzinfo=BERLIN)
    cal = a.with_version(change, b)
    cal.add(datetime(2026, 1, 5, tzinfo=BERLIN), 2000 * H)
    assert 2026 in a.timeline.compiled_years() and 2027 in b.timeline.compiled_years()
    assert 2027 not in a.timeline.compiled_years()  # a is not in force in 2027
