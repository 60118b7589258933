"""File calendars remembered for a short while: the ticket service's default calendar source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sla_engine.core.calendar import Calendar


def _load_calendar(name: str) -> Calendar:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


class RecentCalendars:
    """`load_calendar` remembered for `ttl` seconds; callable as a loader and usable as a
    `CalendarSource` of file calendars (one version each, revision 0).

    The loader looks the file up and checks its mtime on every call; a ticket write needs
    the same one or two calendars each time, so they are re-checked at most once per `ttl`.
    The service's database-backed source (`calendar_store`) replaces it in a running service.
    """

    def __init__(
        self, loader: Callable[[str], Calendar] = _load_calendar, ttl: float = 1.0
    ) -> None:
        self.loader = loader
        self.ttl = ttl
        self._seen: dict[str, tuple[float, Calendar]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Calendar:
        now = time.monotonic()
        seen = self._seen.get(name)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        calendar = self.loader(name)
        with self._lock:
            self._seen[name] = (now, calendar)
        return calendar

    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        return self(name)

    def revision(self, name: str) -> int:
        return 0
