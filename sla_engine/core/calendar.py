"""The public calendar API (SPEC section 1): `load_calendar(name)` and `Calendar`.

`Calendar` converts between aware datetimes / numpy arrays and the integer microseconds of
its `Timeline`, and checks arguments (a naive datetime is a `TypeError`, a negative duration
an `InputError`, both naming the argument).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from sla_engine.core.calendar_file import (
    CalendarSpec,
    calendar_names,
    find_calendar_file,
    is_calendar_path,
    read_calendar_file,
)
from sla_engine.core.timeline import EPOCH, MICROSECOND, Int64Array, Timeline
from sla_engine.core.zoned_instant import ZonedInstant
from sla_engine.errors import CalendarError, InputError

_EPOCH_ORDINAL = EPOCH.toordinal()
_DAY_US = 86_400_000_000
_ZERO = timedelta(0)
_PLAIN = (datetime, ZonedInstant)  # fast path: no pendulum or other subclass
_FLOAT_EXACT_US = 2**32 * 1_000_000  # |seconds| < 2**32: years 1833..2106
_SUB_MICROSECOND = ("ns", "ps", "fs", "as")  # floored to whole microseconds


def instant_us(value: Any, argument: str) -> int:
    """An aware datetime (stdlib or pendulum) as exact microseconds since the epoch."""
    if type(value) in _PLAIN:
        try:
            return (value - EPOCH) // MICROSECOND
        except TypeError:
            raise TypeError(
                f"{argument} must be a timezone-aware datetime, got naive {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise TypeError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    offset = value.utcoffset()
    if offset is None:
        raise TypeError(f"{argument} must be a timezone-aware datetime, got naive {value!r}")
    wall = (value.toordinal() - _EPOCH_ORDINAL) * _DAY_US + (
        (value.hour * 3600 + value.minute * 60 + value.second) * 1_000_000 + value.microsecond
    )
    return wall - timedelta_us(offset)


def timedelta_us(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def duration_us(value: Any, argument: str) -> int:
    """A duration >= 0 (timedelta or numpy timedelta64) as microseconds."""
    if isinstance(value, timedelta):
        micros = timedelta_us(value)
    elif isinstance(value, np.timedelta64):
        micros = int(_timedelta64_us(np.asarray(value), argument))
    else:
        raise TypeError(f"{argument} must be a timedelta, got {value!r}")
    if micros < 0:
        raise InputError(
            f"{argument} must not be negative, got {value}", field=argument, value=str(value)
        )
    return micros


def _datetimes_us(values: Any, argument: str) -> Int64Array:
    """datetime64 values of any unit (read as UTC) or aware datetimes, as microseconds."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        if np.isnat(array).any():
            raise InputError(f"{argument} contains NaT", field=argument, value="NaT")
        unit = np.datetime_data(array.dtype)[0]
        if unit in _SUB_MICROSECOND:
            ns = array.astype("datetime64[ns]").view(np.int64)
            return ns // 1000
        return array.astype("datetime64[us]").view(np.int64)
    if array.dtype == object:
        flat = [instant_us(v, argument) for v in array.ravel()]
        return np.asarray(flat, dtype=np.int64).reshape(array.shape)
    if array.size == 0:
        return np.empty(array.shape, dtype=np.int64)
    raise TypeError(f"{argument} must be a numpy datetime64 array, got dtype {array.dtype}")


def _timedelta64_us(array: npt.NDArray[Any], argument: str) -> Int64Array:
    """timedelta64 values of any fixed unit as microseconds (finer units floored)."""
    if np.isnat(array).any():
        raise InputError(f"{argument} contains NaT", field=argument, value="NaT")
    unit = np.datetime_data(array.dtype)[0]
    if unit in ("Y", "M"):
        raise InputError(
            f"{argument}: months and years are not fixed durations (unit {unit!r})",
            field=argument,
            value=str(array.dtype),
        )
    if unit in _SUB_MICROSECOND:
        floored: Int64Array = array.astype("timedelta64[ns]").view(np.int64) // 1000
        return floored
    return array.astype("timedelta64[us]").view(np.int64)


def _durations_us(values: Any, argument: str) -> Int64Array | int:
    if isinstance(values, timedelta | np.timedelta64):
        return duration_us(values, argument)
    array = np.asarray(values)
    if array.dtype.kind == "m":
        micros = _timedelta64_us(array, argument)
    elif array.dtype == object:
        micros = np.asarray(
            [duration_us(v, argument) for v in array.ravel()], dtype=np.int64
        ).reshape(array.shape)
    else:
        raise TypeError(f"{argument} must be a timedelta or a timedelta64 array")
    negative = micros < 0
    if negative.any():
        bad = array.ravel()[int(np.argmax(negative.ravel()))]
        raise InputError(
            f"{argument} must not be negative, got {bad}", field=argument, value=str(bad)
        )
    return micros


def _broadcast(a: Int64Array, b: Int64Array, argument: str) -> tuple[Int64Array, Int64Array]:
    try:
        first, second = np.broadcast_arrays(a, b)
    except ValueError:
        raise InputError(
            f"{argument}: shape {b.shape} does not match the starts' shape {a.shape}",
            field=argument,
            value=str(b.shape),
        ) from None
    return first, second


class Calendar:
    """Business-hours arithmetic on one calendar (SPEC section 1)."""

    def __init__(
        self, spec: CalendarSpec, *, name: str | None = None, path: Path | None = None
    ) -> None:
        self.spec = spec
        self.path = path
        self.name = name or (path.stem if path else spec.title)
        self.title = spec.title
        self.tz: ZoneInfo = spec.timezone
        self.timeline = Timeline(spec)

    def __repr__(self) -> str:
        return f"Calendar(name={self.name!r}, tz={self.tz.key!r})"

    def _datetime(self, us: int) -> datetime:
        if -_FLOAT_EXACT_US < us < _FLOAT_EXACT_US:
            # exact here: us / 1e6 is within 0.24 us of the true value and
            # fromtimestamp rounds to the nearest microsecond (and is 2x faster)
            return ZonedInstant.fromtimestamp(us / 1e6, self.tz)
        try:
            local = (EPOCH + timedelta(microseconds=us)).astimezone(self.tz)
            return ZonedInstant(
                local.year,
                local.month,
                local.day,
                local.hour,
                local.minute,
                local.second,
                local.microsecond,
                tzinfo=self.tz,
                fold=local.fold,
            )
        except OverflowError:
            raise CalendarError(
                f"{self.name}: result beyond the supported range of dates",
                field="duration",
                value=us,
            ) from None

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The latest instant t with elapsed(start, t) == duration.

        When the budget runs out on a closing time this is the next opening; add(t, 0) is t
        when open, else the next opening.
        """
        try:  # the hot path, inlined; anything unusual goes through instant_us
            s = (start - EPOCH) // MICROSECOND if type(start) in _PLAIN else None
        except TypeError:
            s = None
        if s is None:
            s = instant_us(start, "start")
        if type(duration) is timedelta and duration >= _ZERO:
            d = duration // MICROSECOND
        else:
            d = duration_us(duration, "duration")
        end = self.timeline.add(s, d)
        if -_FLOAT_EXACT_US < end < _FLOAT_EXACT_US:
            return ZonedInstant.fromtimestamp(end / 1e6, self.tz)
        return self._datetime(end)

    def subtract(self, end: datetime, duration: timedelta) -> datetime:
        """The earliest instant s with elapsed(s, end) == duration (lands on a closing time)."""
        e = instant_us(end, "end")
        return self._datetime(self.timeline.subtract(e, duration_us(duration, "duration")))

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Business time in [a, b); negative when b < a."""
        micros = self.timeline.elapsed(instant_us(a, "a"), instant_us(b, "b"))
        return timedelta(0, 0, micros)

    def is_open(self, t: datetime) -> bool:
        return self.timeline.is_open(instant_us(t, "t"))

    def next_open(self, t: datetime) -> datetime:
        """The earliest instant >= t that is open."""
        return self._datetime(self.timeline.next_open(instant_us(t, "t")))

    def next_close(self, t: datetime) -> datetime:
        """The end of the open interval holding t, or of the next one."""
        return self._datetime(self.timeline.next_close(instant_us(t, "t")))

    def open_intervals(self, a: datetime, b: datetime) -> list[tuple[datetime, datetime]]:
        """The open intervals meeting [a, b), clipped to it."""
        pairs = self.timeline.open_intervals(instant_us(a, "a"), instant_us(b, "b"))
        return [(self._datetime(s), self._datetime(e)) for s, e in pairs]

    def add_many(self, starts: Any, durations: Any) -> npt.NDArray[np.datetime64]:
        """Vectorised `add`: datetime64 starts (UTC, any unit) -> datetime64[us] (UTC)."""
        s = _datetimes_us(starts, "starts")
        d = _durations_us(durations, "durations")
        if not isinstance(d, int):
            s, d = _broadcast(s, d, "durations")
            d = np.ascontiguousarray(d).ravel()
        flat = self.timeline.add_many(np.ascontiguousarray(s).ravel(), d)
        return flat.reshape(s.shape).view("datetime64[us]")

    def elapsed_many(self, starts: Any, ends: Any) -> npt.NDArray[np.timedelta64]:
        """Vectorised `elapsed`: timedelta64[us], negative where an end precedes its start."""
        a, b = _broadcast(_datetimes_us(starts, "starts"), _datetimes_us(ends, "ends"), "ends")
        flat = self.timeline.elapsed_many(
            np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
        )
        return flat.reshape(a.shape).view("timedelta64[us]")


_cache: dict[tuple[Path, int], Calendar] = {}
_cache_lock = threading.Lock()


def load_calendar(name: str | Path) -> Calendar:
    """A calendar by name (calendars/NAME.toml, $SLA_ENGINE_CALENDARS first) or by path.

    Compiled calendars are cached by resolved path and modification time, so callers may
    call this freely.
    """
    if isinstance(name, Calendar):
        return name
    if not isinstance(name, str | Path) or not str(name):
        raise CalendarError(f"unknown calendar {name!r}", field="calendar", value=name)
    path = Path(name) if is_calendar_path(name) else find_calendar_file(str(name))
    try:
        resolved = path.resolve(strict=True)
        mtime = resolved.stat().st_mtime_ns
    except OSError:
        raise CalendarError(
            f"{name}: calendar file not found", field="calendar", value=str(name)
        ) from None
    key = (resolved, mtime)
    with _cache_lock:
        calendar = _cache.get(key)
    if calendar is None:
        calendar = Calendar(read_calendar_file(path), name=path.stem, path=resolved)
        with _cache_lock:
            for old in [k for k in _cache if k[0] == resolved]:
                del _cache[old]
            _cache[key] = calendar
    return calendar


def list_calendars() -> list[str]:
    """Names `load_calendar` can find ($SLA_ENGINE_CALENDARS folders, then calendars/)."""
    return calendar_names()


def calendar_from_spec(spec: CalendarSpec, name: str | None = None) -> Calendar:
    """A calendar from an in-memory spec (tests, generated calendars)."""
    return Calendar(spec, name=name)


__all__: Sequence[str] = ("Calendar", "load_calendar", "list_calendars", "calendar_from_spec")
