"""A calendar loader that remembers each calendar for a short while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def _load_calendar(name: str) -> Any:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


class RecentCalendars:
    """`load_calendar` remembered for `ttl` seconds.

    The loader looks the file up and checks its mtime on every call; a ticket write needs
    the same one or two calendars each time, so they are re-checked at most once per `ttl`.
    """

    def __init__(self, loader: Callable[[str], Any] = _load_calendar, ttl: float = 1.0) -> None:
        self.loader = loader
        self.ttl = ttl
        self._seen: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        now = time.monotonic()
        seen = self._seen.get(name)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        calendar = self.loader(name)
        with self._lock:
            self._seen[name] = (now, calendar)
        return calendar
