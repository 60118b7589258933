"""core/times.py: the one home of now, the aware check, ISO text and epoch microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.core.times import (
    EPOCH,
    epoch_us,
    from_epoch_us,
    instant_us,
    is_aware,
    iso,
    iso_utc,
    require_aware,
    timedelta_us,
    utcnow,
)
from sla_engine.core.zoned_instant import ZonedInstant
from sla_engine.errors import InputError

NEW_YORK = ZoneInfo("America/New_York")


def test_now_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC and abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_an_instant_needs_an_offset() -> None:
    aware = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=-7)))
    assert require_aware(aware, "at") is aware
    assert is_aware(aware) and not is_aware(datetime(2026, 11, 26, 9, 0))
    with pytest.raises(InputError, match="at must carry a UTC offset") as naive:
        require_aware(datetime(2026, 11, 26, 9, 0), "at")
    assert (naive.value.field, naive.value.value) == ("at", "2026-11-26T09:00:00")
    with pytest.raises(InputError, match="created_at must be a datetime"):
        require_aware("2026-11-26T09:00:00Z", "created_at")


def test_iso_text_keeps_the_offset_or_converts_to_utc() -> None:
    local = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=-7)))
    assert iso(local) == "2026-11-26T09:00:00-07:00"
    assert iso_utc(local) == "2026-11-26T16:00:00+00:00"
    assert iso(None) is None and iso_utc(None) is None


ODD_OFFSETS = [
    timezone(timedelta(seconds=3661)),  # seconds in the offset: orjson would drop them
    timezone(timedelta(minutes=-1, microseconds=5)),
    timezone(timedelta(hours=-3, minutes=-30)),
    ZoneInfo("Africa/Monrovia"),  # -00:44:30 until 1972
    ZoneInfo("Europe/Amsterdam"),  # +00:19:32 before 1937
    ZoneInfo("Pacific/Chatham"),
    NEW_YORK,
    UTC,
]


@given(
    st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from([*ODD_OFFSETS, None]),
    st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_iso_is_isoformat_whatever_the_offset(
    when: datetime, zone: tzinfo | None, fold: bool
) -> None:
    value = when.replace(tzinfo=zone, fold=int(fold))
    assert iso(value) == value.isoformat()


def test_iso_of_a_datetime_subclass_is_its_own_isoformat() -> None:
    zoned = ZonedInstant.from_epoch_us(1_764_000_000_123_456, NEW_YORK)
    assert iso(zoned) == zoned.isoformat()


@pytest.mark.parametrize(
    "moment",
    [
        EPOCH,
        datetime(2026, 3, 8, 7, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1),  # the repeated hour
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_epoch_microseconds_are_exact_and_round_trip(moment: datetime) -> None:
    us = epoch_us(moment)
    assert us == (moment - EPOCH) // timedelta(microseconds=1) == instant_us(moment)
    assert from_epoch_us(us) == moment.astimezone(UTC)  # (an inter-zone == in a fold is False)


def test_epoch_microseconds_of_a_subclass_come_from_its_wall_clock_and_offset() -> None:
    first = ZonedInstant(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    second = ZonedInstant(2026, 11, 1, 1, 30, tzinfo=NEW_YORK, fold=1)
    early, late = epoch_us(first), epoch_us(second)
    assert early is not None and late is not None and late - early == 3_600_000_000
    assert epoch_us(datetime(2026, 1, 1)) is None


def test_the_fast_form_refuses_a_naive_datetime() -> None:
    with pytest.raises(TypeError):
        instant_us(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("us", "wall", "fold"),
    [
        (1_793_511_000_000_000, datetime(2026, 11, 1, 1, 30), 0),  # EDT, first 01:30
        (1_793_514_600_000_000, datetime(2026, 11, 1, 1, 30), 1),  # EST, the repeated 01:30
        (253_402_300_799_999_999, datetime(9999, 12, 31, 18, 59, 59, 999_999), 0),
    ],
)
def test_a_calendar_result_from_epoch_microseconds_is_exact_in_its_zone(
    us: int, wall: datetime, fold: int
) -> None:
    result = ZonedInstant.from_epoch_us(us, NEW_YORK)
    assert type(result) is ZonedInstant and result.tzinfo is NEW_YORK
    assert (result.replace(tzinfo=None), result.fold) == (wall, fold)
    assert epoch_us(result) == us


def test_durations_as_exact_microseconds() -> None:
    assert timedelta_us(timedelta(days=-1, microseconds=5)) == -86_400_000_000 + 5
    assert timedelta_us(timedelta(hours=4)) == 14_400_000_000
