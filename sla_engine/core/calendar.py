"""The public calendar API: `load_calendar(name)` and `Calendar` (docs/REFERENCE.md).

`Calendar` converts between aware datetimes / numpy arrays and the integer microseconds of
its `Timeline` (the arguments are checked by `calendar_inputs.py`, naming the argument).
`cal.with_version(effective_from, other)` and `versioned_calendar(name, versions)` give
calendars whose hours change over time; `load_calendar` keeps compiled calendars by file
(`calendar_cache.py`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from sla_engine.core.calendar_cache import CalendarFileCache
from sla_engine.core.calendar_folders import calendar_names
from sla_engine.core.calendar_inputs import (
    PLAIN_TYPES,
    Durations,
    Instants,
    broadcast,
    duration_us,
    durations_us,
    instant_us,
    instants_us,
)
from sla_engine.core.calendar_spec import CalendarSpec
from sla_engine.core.calendar_versions import CalendarVersion
from sla_engine.core.timeline import Timeline
from sla_engine.core.times import EPOCH, ONE_US, iso
from sla_engine.core.zoned_instant import ZonedInstant
from sla_engine.errors import CalendarError

__all__ = (
    "Calendar",
    "CalendarVersion",
    "calendar_from_spec",
    "list_calendars",
    "load_calendar",
    "versioned_calendar",
)

_ZERO = timedelta(0)
_FLOAT_EXACT_US = 2**32 * 1_000_000  # |seconds| < 2**32: years 1833..2106


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
    """Business-hours arithmetic on one calendar (docs/REFERENCE.md, Calendars), possibly versioned.

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
                f"the last version's ({iso(self._versions[-1].effective_from)})",
                field="effective_from",
                value=effective_from.isoformat(),
            )
        theirs = other._versions if isinstance(other, Calendar) else _own_versions(other)
        later = [v for v in theirs if v.from_us is not None and v.from_us > at]
        in_force = theirs[len(theirs) - len(later) - 1]
        start = _Version(
            ZonedInstant.from_epoch_us(at, in_force.spec.timezone), at, in_force.timeline
        )
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
            return ZonedInstant.from_epoch_us(us, tz)
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
            s = (start - EPOCH) // ONE_US if type(start) in PLAIN_TYPES else None
        except TypeError:
            s = None
        if s is None:
            s = instant_us(start, "start")
        if type(duration) is timedelta and duration >= _ZERO:
            d = duration // ONE_US
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

    def add_many(self, starts: Instants, durations: Durations) -> npt.NDArray[np.datetime64]:
        """Vectorised `add`: datetime64 starts (UTC, any unit) -> datetime64[us] (UTC)."""
        s = instants_us(starts, "starts")
        d = durations_us(durations, "durations")
        if not isinstance(d, int):
            s, d = broadcast(s, d, "durations")
            d = np.ascontiguousarray(d).ravel()
        flat = self.timeline.add_many(np.ascontiguousarray(s).ravel(), d)
        return flat.reshape(s.shape).view("datetime64[us]")

    def elapsed_many(self, starts: Instants, ends: Instants) -> npt.NDArray[np.timedelta64]:
        """Vectorised `elapsed`: timedelta64[us], negative where an end precedes its start."""
        a, b = broadcast(instants_us(starts, "starts"), instants_us(ends, "ends"), "ends")
        flat = self.timeline.elapsed_many(
            np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
        )
        return flat.reshape(a.shape).view("timedelta64[us]")


_files = CalendarFileCache(lambda spec, name, path: Calendar(spec, name=name, path=path))


def load_calendar(name: str | Path | Calendar) -> Calendar:
    """A calendar by name (calendars/NAME.toml, $SLA_ENGINE_CALENDARS first) or by path.

    Compiled calendars are cached by resolved path and modification time (of the file and
    of the iCalendar files it names), so callers may call this freely.
    """
    if isinstance(name, Calendar):
        return name
    return _files.load(name)


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


def _own_versions(spec: CalendarSpec) -> tuple[_Version, ...]:
    return (_Version(None, None, Timeline(spec)),)
