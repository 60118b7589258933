"""`CalendarSpec`: what a calendar file says, validated and immutable (docs/REFERENCE.md, Keys).

Open windows are offsets from local midnight; closures are local or exact datetime ranges;
holidays come from a `HolidaySource` (`holiday_sources.py`). Reading a file into a spec is
`calendar_reader.py`'s job, turning a spec into instants `open_set.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from sla_engine.core.holiday_sources import HolidaySource

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    """Open hours of one local date, as offsets from that date's local midnight.

    `end` is after `start`; a window that runs past midnight has `end` beyond 24 hours.
    """

    start: timedelta
    end: timedelta
    text: str


@dataclass(frozen=True)
class Closure:
    """A local (naive, fold=0) or exact (aware) datetime range that is always closed."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class CalendarSpec:
    """What a calendar file says, validated."""

    title: str
    timezone: ZoneInfo
    hours: tuple[tuple[Window, ...], ...]
    holidays: HolidaySource | None = None
    dates: Mapping[date, tuple[Window, ...]] = field(default_factory=dict)
    closures: tuple[Closure, ...] = ()
    source: str = "<calendar>"

    @cached_property
    def has_weekly_hours(self) -> bool:
        return any(self.hours)

    @cached_property
    def override_years(self) -> tuple[int, int] | None:
        """The first and last years named by [dates], [[closures]] or iCalendar events."""
        years = [d.year for d in self.dates]
        for closure in self.closures:
            years += [closure.start.year, closure.end.year]
        for source in self.holidays.ics if self.holidays else ():
            years += source.years
        return (min(years), max(years)) if years else None
