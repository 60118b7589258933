"""Compiled calendars kept by file, reused while the file is unchanged.

`load_calendar(name)` is called freely (by every ticket write, every escalation), so what a
calendar file compiles to is kept by the file's resolved path and modification time, and by
those of the iCalendar files it names: a changed file is read again, an unchanged one never.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from sla_engine.core.calendar_file import read_calendar_file
from sla_engine.core.calendar_folders import find_calendar_file, is_calendar_path
from sla_engine.core.calendar_spec import CalendarSpec
from sla_engine.errors import CalendarError

T = TypeVar("T")

Stamps = tuple[int | None, ...]


class CalendarFileCache(Generic[T]):
    """What `build(spec, name, resolved_path)` makes of each calendar file, cached.

    `name` is the file's stem as looked up (a symlink keeps its own name).
    """

    def __init__(self, build: Callable[[CalendarSpec, str, Path], T]) -> None:
        self._build = build
        self._entries: dict[tuple[Path, int], tuple[T, CalendarSpec, Stamps]] = {}
        self._lock = threading.Lock()

    def load(self, name: object) -> T:
        """By name (calendars/NAME.toml, $SLA_ENGINE_CALENDARS first) or by path."""
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
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[2] and _ics_stamps(cached[1]) != cached[2]:
            cached = None
        if cached is None:
            spec = read_calendar_file(path)
            cached = (self._build(spec, path.stem, resolved), spec, _ics_stamps(spec))
            with self._lock:
                for old in [k for k in self._entries if k[0] == resolved]:
                    del self._entries[old]
                self._entries[key] = cached
        return cached[0]


def _ics_stamps(spec: CalendarSpec) -> Stamps:
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
