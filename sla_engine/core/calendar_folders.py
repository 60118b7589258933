"""Where calendar files are found: $SLA_ENGINE_CALENDARS folders in order, then calendars/.

A name such as `smartertools` is looked up as `NAME.toml` in each folder; a name that looks
like a path (a `/`, or ending in `.toml`) designates that file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from sla_engine.errors import CalendarError

_PACKAGE = Path(__file__).resolve().parents[1]
PROJECT_CALENDARS = next(
    (d for d in (_PACKAGE / "calendars", _PACKAGE.parent / "calendars") if d.is_dir()),
    _PACKAGE / "calendars",
)
"""The shipped calendars: inside the installed package (the wheel puts them there), else the
checkout's top-level `calendars/` (an editable install)."""
CALENDARS_ENV = "SLA_ENGINE_CALENDARS"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def calendar_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Folders searched for NAME.toml: $SLA_ENGINE_CALENDARS (in order), then calendars/."""
    env = os.environ if env is None else env
    extra = [Path(p) for p in env.get(CALENDARS_ENV, "").split(":") if p.strip()]
    return [*extra, PROJECT_CALENDARS]


def is_calendar_path(name: str | Path) -> bool:
    """A name that designates a file rather than a calendar to look up."""
    text = str(name)
    return isinstance(name, Path) or "/" in text or os.sep in text or text.endswith(".toml")


def find_calendar_file(name: str, env: Mapping[str, str] | None = None) -> Path:
    """The file of calendar NAME, searching `calendar_dirs()` in order."""
    if isinstance(name, str) and _NAME.match(name):
        for folder in calendar_dirs(env):
            candidate = folder / f"{name}.toml"
            if candidate.is_file():
                return candidate
    known = ", ".join(calendar_names(env)) or "none"
    raise CalendarError(f"unknown calendar {name!r} (known: {known})", field="calendar", value=name)


def calendar_names(env: Mapping[str, str] | None = None) -> list[str]:
    """Names of the calendars reachable by `find_calendar_file`, sorted."""
    names: set[str] = set()
    for folder in calendar_dirs(env):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml") if p.is_file())
    return sorted(names)
