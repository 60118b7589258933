"""Validating a calendar definition (the calendar file's keys) into a `CalendarSpec`.

The definition is a mapping: parsed TOML (a calendar file) or JSON (the HTTP API). Every
problem raises `CalendarError` naming the source, the key and the bad value; the `[holidays]`
table is `holidays_reader.py`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_engine.core.calendar_spec import WEEKDAYS, CalendarSpec, Closure, Window
from sla_engine.core.holidays_reader import HolidaysReader
from sla_engine.core.toml_reader import key_path
from sla_engine.errors import CalendarError

_WEEKDAY_NAMES = {
    **{short: index for index, short in enumerate(WEEKDAYS)},
    **{
        long: index
        for index, long in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_TOP_KEYS = ("name", "timezone", "hours", "holidays", "dates", "closures")
_CLOSURE_KEYS = ("start", "end", "reason")
_DAY = timedelta(days=1)

_CLOCK = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_WINDOW = re.compile(rf"^\s*{_CLOCK}\s*-\s*{_CLOCK}\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")


def parse_calendar_definition(
    data: Mapping[str, object],
    *,
    source: str,
    base_dir: Path | None = None,
    allow_ics_paths: bool = True,
) -> CalendarSpec:
    """Validate a definition (the section 1 keys) that came as a mapping: parsed TOML or JSON.

    `source` names it in errors; `ics` paths are relative to `base_dir` (by default the folder
    of `source`). With `allow_ics_paths=False` an `ics` key is an error naming `holidays.ics`
    (inline `holidays.ics_text` is accepted either way).
    """
    return CalendarReader(source, base_dir, allow_ics_paths).spec(data)


class CalendarReader:
    """Validates one definition; knows the source name for error messages."""

    def __init__(self, source: str, base_dir: Path | None, allow_ics_paths: bool) -> None:
        self.source = source
        folder = base_dir if base_dir is not None else Path(source).parent
        self.holidays = HolidaysReader(source, folder, allow_ics_paths, self.error)

    def error(self, key: str, problem: str, value: object) -> CalendarError:
        return CalendarError(f"{self.source}: {key}: {problem}: {value!r}", field=key, value=value)

    def spec(self, data: Mapping[str, object]) -> CalendarSpec:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.error(
                    key_path("", key), f"unknown key (allowed: {', '.join(_TOP_KEYS)})", key
                )
        title = data.get("name", Path(self.source).stem)
        if not isinstance(title, str) or not title.strip():
            raise self.error("name", "must be a non-empty string", title)
        return CalendarSpec(
            title=title,
            timezone=self.timezone(data.get("timezone")),
            hours=self.hours(data.get("hours", {})),
            holidays=self.holidays.read(data["holidays"]) if "holidays" in data else None,
            dates=self.dates(data.get("dates", {})),
            closures=self.closures(data.get("closures", [])),
            source=self.source,
        )

    def timezone(self, value: object) -> ZoneInfo:
        if value is None:
            raise self.error("timezone", "missing; give an IANA zone such as 'Europe/London'", None)
        if not isinstance(value, str):
            raise self.error("timezone", "must be an IANA zone name", value)
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise self.error("timezone", "unknown time zone", value) from None

    def hours(self, value: object) -> tuple[tuple[Window, ...], ...]:
        if not isinstance(value, Mapping):
            raise self.error("hours", "must be a table of weekday = [windows]", value)
        week: list[tuple[Window, ...]] = [() for _ in WEEKDAYS]
        seen: set[int] = set()
        for day, windows in value.items():
            index = _WEEKDAY_NAMES.get(day)
            if index is None:
                raise self.error(key_path("hours", day), "unknown weekday (use mon..sun)", day)
            if index in seen:
                raise self.error(key_path("hours", day), "weekday given twice", day)
            seen.add(index)
            week[index] = self.windows(key_path("hours", day), windows)
        return tuple(week)

    def windows(self, key: str, value: object) -> tuple[Window, ...]:
        if not isinstance(value, list):
            raise self.error(key, 'must be a list of windows such as ["08:00-17:00"]', value)
        return tuple(self.window(f"{key}[{i}]", text) for i, text in enumerate(value))

    def window(self, key: str, text: object) -> Window:
        if not isinstance(text, str) or (match := _WINDOW.match(text)) is None:
            raise self.error(key, 'malformed window (expected "HH:MM-HH:MM")', text)
        parts = [int(g) if g is not None else 0 for g in match.groups()]
        start = self.clock(key, text, parts[0:3], is_end=False)
        end = self.clock(key, text, parts[3:6], is_end=True)
        if end <= start:
            end += _DAY
        return Window(start=start, end=end, text=text)

    def clock(self, key: str, text: str, parts: Sequence[int], *, is_end: bool) -> timedelta:
        hour, minute, second = parts
        whole_day = is_end and hour == 24 and minute == 0 and second == 0
        if not whole_day and (hour > 23 or minute > 59 or second > 59):
            what = "24:00 is allowed only as an end" if hour == 24 else "time out of range"
            raise self.error(key, f"malformed window ({what})", text)
        return timedelta(hours=hour, minutes=minute, seconds=second)

    def dates(self, value: object) -> dict[date, tuple[Window, ...]]:
        if not isinstance(value, Mapping):
            raise self.error("dates", 'must be a table of "YYYY-MM-DD" = [windows]', value)
        result: dict[date, tuple[Window, ...]] = {}
        for key, windows in value.items():
            day = self.date(key_path("dates", key), key)
            result[day] = self.windows(key_path("dates", key), windows)
        return result

    def date(self, key: str, value: object) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(key, "bad date (expected YYYY-MM-DD)", value)

    def closures(self, value: object) -> tuple[Closure, ...]:
        if not isinstance(value, list):
            raise self.error("closures", "must be an array of tables [[closures]]", value)
        return tuple(self.closure(f"closures[{index}]", item) for index, item in enumerate(value))

    def closure(self, key: str, item: object) -> Closure:
        if not isinstance(item, Mapping):
            raise self.error(key, "must be a table with start and end", item)
        for sub in item:
            if sub not in _CLOSURE_KEYS:
                raise self.error(key_path(key, sub), "unknown key", sub)
        start = self.moment(f"{key}.start", item.get("start"))
        end = self.moment(f"{key}.end", item.get("end"))
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise self.error(f"{key}.end", "mixes local and offset datetimes", item.get("end"))
        if end <= start:
            raise self.error(f"{key}.end", "must be after start", item.get("end"))
        return Closure(start, end)

    def moment(self, key: str, value: object) -> datetime:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime.combine(value, time())
        if isinstance(value, str):
            text = value.strip()
            try:
                if _DATE.match(text):
                    return datetime.combine(date.fromisoformat(text), time())
                if _LOCAL_DATETIME.match(text):
                    return datetime.fromisoformat(text)
            except ValueError:
                pass
        raise self.error(key, "bad datetime (expected local YYYY-MM-DDTHH:MM)", value)
