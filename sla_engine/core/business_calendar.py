"""The calendar seam: what clocks, policies, tickets, credits and escalations ask of a calendar.

`sla_engine.core.calendar.Calendar` satisfies it; tests and other parts may pass anything
with these five questions answered in business time. Typing against this protocol instead of
`Any` (or the concrete class) keeps the parts that only *use* a calendar free of how it is
compiled or versioned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol


class BusinessCalendar(Protocol):
    """Business-time arithmetic over one calendar (all instants aware)."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of open time after `start`."""
        ...

    def subtract(self, end: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of open time before `end`."""
        ...

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Open time between `a` and `b`."""
        ...

    def is_open(self, t: datetime) -> bool:
        """Whether `t` falls in open hours."""
        ...

    def next_open(self, t: datetime) -> datetime:
        """`t` when open, else the next opening."""
        ...


CalendarLookup = Callable[[str], BusinessCalendar]
"""A calendar by name (e.g. `load_calendar`)."""
