"""The public calendar API (SPEC sections 1 and 6): `load_calendar(name)` and `Calendar`.

`Calendar` converts between aware datetimes / numpy arrays and the integer microseconds of
its `Timeline`, and checks arguments (a naive datetime is a `TypeError`, a negative duration
an `InputError`, both naming the argument). `cal.with_version(effective_from, other)` and
`versioned_calendar(name, versions)` give calendars whose hours change over time.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
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
from sla_engine.core.calendar_versions import CalendarVersion
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


class _Version:
    """A version as a calendar holds it: its instant (both forms) and its own timeline."""

    __slots__ = ("effective_from", "from_us", "spec", "timeline")

    def __init__(
        self, effective_from: datetime | None, from_us: int | None, timeline: Timeline
    ) -> None:
        self.effective_from = effective_from
        self.from_us = from_us
        self.spec = timeline.spec
        self.timeline = timeline


class Calendar:
    """Business-hours arithmetic on one calendar (SPEC section 1), possibly versioned (6).

    For a versioned calendar `spec`, `tz` and `title` are the latest version's; each result is
    in the zone of the version in force at it (`version_at(t)`).
    """

    def __init__(
        self, spec: CalendarSpec, *, name: str | None = None, path: Path | None = None
    ) -> None:
        self.path = path
        self.name = name or (path.stem if path else spec.title)
        timeline = Timeline(spec)
        self._setup(timeline, (_Version(None, None, timeline),))

    def _setup(self, timeline: Timeline, versions: tuple[_Version, ...]) -> None:
        self._versions = versions
        self._version_bounds = [v.from_us for v in versions[1:] if v.from_us is not None]
        self.timeline = timeline
        self.spec = timeline.spec
        self.title = self.spec.title
        self.tz: ZoneInfo = self.spec.timezone
        # where the result zone changes, and the zone from each change on
        bounds: list[int] = []
        zones = [versions[0].spec.timezone]
        for version in versions[1:]:
            if version.spec.timezone.key != zones[-1].key:
                assert version.from_us is not None
                bounds.append(version.from_us)
                zones.append(version.spec.timezone)
        self._zone_bounds = bounds
        self._zones = zones

    def __repr__(self) -> str:
        more = f", versions={len(self._versions)}" if len(self._versions) > 1 else ""
        return f"Calendar(name={self.name!r}, tz={self.tz.key!r}{more})"

    # -- versions --------------------------------------------------------------------------

    @property
    def versions(self) -> tuple[CalendarVersion, ...]:
        """(effective_from, spec) pairs in order; the first's effective_from is None."""
        return tuple(CalendarVersion(v.effective_from, v.spec) for v in self._versions)

    def with_version(self, effective_from: datetime, other: Calendar | CalendarSpec) -> Calendar:
        """This calendar before `effective_from` and `other` from it on (exact at the instant).

        `effective_from` must be later than this calendar's last version's. When `other` is
        versioned itself, its versions in force from `effective_from` on are taken.
        """
        at = instant_us(effective_from, "effective_from")
        last = self._versions[-1].from_us
        if last is not None and at <= last:
            raise CalendarError(
                f"{self.name}: effective_from {effective_from.isoformat()} must be later than "
                f"the last version's ({_iso(self._versions[-1].effective_from)})",
                field="effective_from",
                value=effective_from.isoformat(),
            )
        theirs = other._versions if isinstance(other, Calendar) else _own_versions(other)
        later = [v for v in theirs if v.from_us is not None and v.from_us > at]
        in_force = theirs[len(theirs) - len(later) - 1]
        start = _Version(_zoned(at, in_force.spec.timezone), at, in_force.timeline)
        return self._with_versions((*self._versions, start, *later), self.name, self.path)

    @staticmethod
    def _with_versions(versions: tuple[_Version, ...], name: str, path: Path | None) -> Calendar:
        calendar = Calendar.__new__(Calendar)
        calendar.name, calendar.path = name, path
        first, later = versions[0].timeline, versions[1:]
        pairs = [(v.from_us, v.timeline) for v in later if v.from_us is not None]
        calendar._setup(Timeline.versioned(first, pairs), versions)
        return calendar

    def version_at(self, t: datetime) -> CalendarVersion:
        """The version in force at instant t."""
        us = instant_us(t, "t")
        index = bisect_right(self._version_bounds, us)
        version = self._versions[index]
        return CalendarVersion(version.effective_from, version.spec)

    def _zone(self, us: int) -> ZoneInfo:
        if not self._zone_bounds:
            return self.tz
        return self._zones[bisect_right(self._zone_bounds, us)]

    # -- arithmetic ------------------------------------------------------------------------

    def _datetime(self, us: int) -> datetime:
        tz = self._zone(us)
        if -_FLOAT_EXACT_US < us < _FLOAT_EXACT_US:
            # exact here: us / 1e6 is within 0.24 us of the true value and
            # fromtimestamp rounds to the nearest microsecond (and is 2x faster)
            return ZonedInstant.fromtimestamp(us / 1e6, tz)
        try:
            return _zoned(us, tz)
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
        if -_FLOAT_EXACT_US < end < _FLOAT_EXACT_US and not self._zone_bounds:
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


_cache: dict[tuple[Path, int], tuple[Calendar, tuple[int | None, ...]]] = {}
_cache_lock = threading.Lock()


def _ics_stamps(spec: CalendarSpec) -> tuple[int | None, ...]:
    """Modification times of the iCalendar files a spec read (None: gone)."""
    stamps: list[int | None] = []
    for source in spec.holidays.ics if spec.holidays else ():
        if source.name == "holidays.ics_text":
            continue
        try:
            stamps.append(Path(source.name).stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def load_calendar(name: str | Path) -> Calendar:
    """A calendar by name (calendars/NAME.toml, $SLA_ENGINE_CALENDARS first) or by path.

    Compiled calendars are cached by resolved path and modification time (of the file and
    of the iCalendar files it names), so callers may call this freely.
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
        cached = _cache.get(key)
    if cached is not None and cached[1] and _ics_stamps(cached[0].spec) != cached[1]:
        cached = None
    if cached is None:
        spec = read_calendar_file(path)
        cached = (Calendar(spec, name=path.stem, path=resolved), _ics_stamps(spec))
        with _cache_lock:
            for old in [k for k in _cache if k[0] == resolved]:
                del _cache[old]
            _cache[key] = cached
    return cached[0]


def list_calendars() -> list[str]:
    """Names `load_calendar` can find ($SLA_ENGINE_CALENDARS folders, then calendars/)."""
    return calendar_names()


def calendar_from_spec(spec: CalendarSpec, name: str | None = None) -> Calendar:
    """A calendar from an in-memory spec (tests, generated calendars)."""
    return Calendar(spec, name=name)


def versioned_calendar(
    name: str | None,
    versions: Sequence[tuple[datetime | None, CalendarSpec | Calendar]],
    *,
    path: Path | None = None,
) -> Calendar:
    """A calendar from its versions in order: (None, first), (effective_from, next), ...

    Only the first has no effective_from; each later one must be later than the one before
    (else `CalendarError` naming `effective_from`).
    """
    if not versions:
        raise CalendarError("a calendar needs at least one version", field="versions", value=[])
    first_from, first = versions[0]
    if first_from is not None:
        raise CalendarError(
            "the first version has no effective_from (it is in force from the beginning)",
            field="effective_from",
            value=first_from.isoformat() if isinstance(first_from, datetime) else first_from,
        )
    base = first if isinstance(first, Calendar) else Calendar(first, name=name, path=path)
    calendar = Calendar._with_versions(base._versions, name or base.name, path or base.path)
    for effective_from, other in versions[1:]:
        if effective_from is None:
            raise CalendarError(
                "only the first version may have no effective_from",
                field="effective_from",
                value=None,
            )
        calendar = calendar.with_version(effective_from, other)
    return calendar


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _own_versions(spec: CalendarSpec) -> tuple[_Version, ...]:
    return (_Version(None, None, Timeline(spec)),)


def _zoned(us: int, tz: ZoneInfo) -> datetime:
    """The instant `us` as a ZonedInstant in `tz`, exactly (any supported year)."""
    local = (EPOCH + timedelta(microseconds=us)).astimezone(tz)
    return ZonedInstant(
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.second,
        local.microsecond,
        tzinfo=tz,
        fold=local.fold,
    )


__all__: Sequence[str] = (
    "Calendar",
    "CalendarVersion",
    "load_calendar",
    "list_calendars",
    "calendar_from_spec",
    "versioned_calendar",
)
