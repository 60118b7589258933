"""The engine's one home for instant helpers: now, the aware check, ISO text, epoch microseconds.

Every instant the engine stores or compares is an aware datetime; naive local times are
ambiguous and are refused at the edge (`require_aware`). Microseconds since the Unix epoch
are the engine's exact integer form of an instant (the calendar timeline computes in them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from sla_engine.errors import InputError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
_EPOCH_ORDINAL = EPOCH.toordinal()


def utcnow() -> datetime:
    """The current instant, aware, in UTC (the default clock of every service)."""
    return datetime.now(UTC)


def is_aware(value: datetime) -> bool:
    """A datetime that names an instant: it carries a UTC offset."""
    return value.tzinfo is not None and value.utcoffset() is not None


def require_aware(value: object, field_name: str) -> datetime:
    """`value` as an instant, or an `InputError` naming `field_name` (not a datetime, naive)."""
    if not isinstance(value, datetime):
        raise InputError(f"{field_name} must be a datetime", field=field_name, value=value)
    if not is_aware(value):
        raise InputError(
            f"{field_name} must carry a UTC offset (e.g. 2026-11-26T09:00:00-07:00)",
            field=field_name,
            value=value.isoformat(),
        )
    return value


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of an optional instant, in its own offset (None stays None): the text of
    `datetime.isoformat()`, which orjson writes at a third of its cost (an event's answer has
    about ten instants) wherever the two agree: a plain datetime whose UTC offset is whole
    minutes (orjson leaves an offset's seconds out)."""
    if value is None:
        return None
    if type(value) is datetime:
        offset = value.utcoffset()
        if offset is not None and not offset.seconds % 60 and not offset.microseconds:
            try:
                return orjson.dumps(value)[1:-1].decode()
            except orjson.JSONEncodeError:  # a time zone class orjson does not know
                pass
    return value.isoformat()


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 text of an optional instant in UTC (as stored; the caller's offset is not kept)."""
    return None if value is None else value.astimezone(UTC).isoformat()


def timedelta_us(value: timedelta) -> int:
    """A duration as exact integer microseconds."""
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def instant_us(value: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime, by datetime arithmetic
    (the fast form, for stdlib datetimes and `ZonedInstant`; a naive one is a `TypeError`).
    A subclass that redefines subtraction (pendulum) needs `epoch_us`."""
    return (value - EPOCH) // ONE_US


def epoch_us(value: datetime) -> int | None:
    """Exact microseconds since the Unix epoch of an aware datetime of any `datetime` subclass
    (computed from its wall clock and offset, so subclasses that redefine arithmetic or
    comparison give the same answer); None for a naive one."""
    offset = value.utcoffset()
    if offset is None:
        return None
    wall = (value.toordinal() - _EPOCH_ORDINAL) * DAY_US + (
        (value.hour * 3600 + value.minute * 60 + value.second) * 1_000_000 + value.microsecond
    )
    return wall - timedelta_us(offset)


def from_epoch_us(us: int) -> datetime:
    """The UTC datetime `us` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=us)
