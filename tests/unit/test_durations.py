"""Duration strings of policy files and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_engine.core.durations import format_duration, parse_duration
from sla_engine.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", timedelta(hours=4)),
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1h30m15s", timedelta(hours=1, minutes=30, seconds=15)),
        ("0s", timedelta(0)),
        ("0h", timedelta(0)),
        ("1.5h", timedelta(minutes=90)),
        ("0.5s", timedelta(milliseconds=500)),
        ("400h", timedelta(hours=400)),
        (" 2h 15m ", timedelta(hours=2, minutes=15)),
        ("1H", timedelta(hours=1)),
    ],
)
def test_parse_duration_accepts_policy_strings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "4", "h", "4d", "1w", "-4h", "4h-", "30m1h", "1.h", "4 hours", "1e3s", "PT4H"],
)
def test_parse_duration_rejects_bad_text_naming_field_and_value(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_duration(text, field="breach")
    assert info.value.field == "breach"
    assert info.value.value == text
    assert "breach" in info.value.message
    assert repr(text) in info.value.message


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(InputError) as info:
        parse_duration(4, field="target")  # type: ignore[arg-type]
    assert info.value.field == "target"


def test_parse_duration_rejects_sub_microsecond_precision() -> None:
    with pytest.raises(InputError, match="microsecond"):
        parse_duration("0.0000001s")


def test_signed_durations_only_when_asked() -> None:
    assert parse_duration("-15m", signed=True) == timedelta(minutes=-15)
    assert parse_duration("+15m", signed=True) == timedelta(minutes=15)
    assert parse_duration("-0s", signed=True) == timedelta(0)
    with pytest.raises(InputError, match="negative"):
        parse_duration("-15m")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=4), "4h"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
        (timedelta(hours=400), "400h"),
        (timedelta(hours=1, seconds=5), "1h5s"),
        (timedelta(seconds=1, microseconds=500_000), "1.5s"),
        (timedelta(microseconds=1), "0.000001s"),
        (timedelta(minutes=-15), "-15m"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_round_trips(micros: int) -> None:
    value = timedelta(microseconds=micros)
    assert parse_duration(format_duration(value), signed=True) == value
