"""Calendar TOML files: reading them into a validated `CalendarSpec`.

`read_calendar_file(path)` and `parse_calendar_text(text)` turn TOML into a spec; every
problem raises `CalendarError` naming the file, the key and the bad value. The parts live in
their own modules and are importable from here too:

- `calendar_spec.py`: `CalendarSpec`, `Window`, `Closure` (what a file says);
- `holiday_sources.py`: `HolidaySource`, `HolidayTable` (its `[holidays]`);
- `calendar_reader.py`, `holidays_reader.py`: validating a definition
  (`parse_calendar_definition`);
- `calendar_folders.py`: finding files by calendar name (`find_calendar_file`, ...).

Turning a spec into instants is `open_set.py`'s and `timeline.py`'s job.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from sla_engine.core.calendar_folders import (
    CALENDARS_ENV,
    PROJECT_CALENDARS,
    calendar_dirs,
    calendar_names,
    find_calendar_file,
    is_calendar_path,
)
from sla_engine.core.calendar_reader import parse_calendar_definition
from sla_engine.core.calendar_spec import WEEKDAYS, CalendarSpec, Closure, Window
from sla_engine.core.holiday_sources import HolidaySource, HolidayTable
from sla_engine.errors import CalendarError

__all__ = (
    "CALENDARS_ENV",
    "PROJECT_CALENDARS",
    "WEEKDAYS",
    "CalendarSpec",
    "Closure",
    "HolidaySource",
    "HolidayTable",
    "Window",
    "calendar_dirs",
    "calendar_names",
    "find_calendar_file",
    "is_calendar_path",
    "parse_calendar",
    "parse_calendar_definition",
    "parse_calendar_text",
    "read_calendar_file",
)


def parse_calendar(data: Mapping[str, object], source: str = "<calendar>") -> CalendarSpec:
    """Validate an already parsed TOML document."""
    return parse_calendar_definition(data, source=source)


def parse_calendar_text(
    text: str,
    source: str = "<calendar>",
    *,
    base_dir: Path | None = None,
    allow_ics_paths: bool = True,
) -> CalendarSpec:
    """Parse and validate calendar TOML text (see `parse_calendar_definition`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{source}: invalid TOML: {exc}", field="file", value=source) from None
    return parse_calendar_definition(
        data, source=source, base_dir=base_dir, allow_ics_paths=allow_ics_paths
    )


def read_calendar_file(path: str | Path) -> CalendarSpec:
    """Read and validate one calendar file (`ics` paths are relative to its folder)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(
            f"{path}: cannot read calendar file ({exc.__class__.__name__})",
            field="file",
            value=str(path),
        ) from None
    return parse_calendar_text(text, str(path), base_dir=Path(path).parent)
