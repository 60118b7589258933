"""Where calendars come from, as the clock and the services see them.

A source answers "the calendar NAME as it was known at X": with stored versions (a service's
database) the answer about a past instant uses only the versions known then, so a change never
rewrites the past. `revision(name)` changes whenever a new version of NAME becomes known, so a
saved clock state can tell it was computed against older hours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sla_engine.core.calendar import Calendar, load_calendar


class CalendarSource(Protocol):
    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        """NAME with every version known at ``known_at`` (all versions when None)."""
        ...

    def revision(self, name: str) -> int:
        """A number that grows whenever a version of NAME is added."""
        ...


class FileCalendars:
    """Calendars from TOML files only (one version each): the plain-library default."""

    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        return load_calendar(name)

    def revision(self, name: str) -> int:
        return 0
