"""Calendar TOML files: reading, validating and finding them (SPEC section 1).

`read_calendar_file(path)` turns a file into a `CalendarSpec`, a validated, immutable model of
what the file says (windows as offsets from local midnight, holiday source, per-date overrides,
closures). Every problem raises `CalendarError` naming the file, the key and the bad value.
Turning a spec into instants is `timeline.py`'s job.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from sla_engine.core.ics_holidays import IcsHolidays
from sla_engine.errors import CalendarError

_PACKAGE = Path(__file__).resolve().parents[1]
PROJECT_CALENDARS = next(
    (d for d in (_PACKAGE / "calendars", _PACKAGE.parent / "calendars") if d.is_dir()),
    _PACKAGE / "calendars",
)
"""The shipped calendars: inside the installed package (the wheel puts them there), else the
checkout's top-level `calendars/` (an editable install)."""
CALENDARS_ENV = "SLA_ENGINE_CALENDARS"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
_HOLIDAY_KEYS = ("country", "subdiv", "categories", "ics", "ics_text")
_CLOSURE_KEYS = ("start", "end", "reason")
_DAY = timedelta(days=1)

_CLOCK = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_WINDOW = re.compile(rf"^\s*{_CLOCK}\s*-\s*{_CLOCK}\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")


@dataclass(frozen=True)
class Window:
    """Open hours of one local date, as offsets from that date's local midnight.

    `end` is after `start`; a window that runs past midnight has `end` beyond 24 hours.
    """

    start: timedelta
    end: timedelta
    text: str


@dataclass(frozen=True)
class HolidaySource:
    """Public holidays of a country (and subdivision) from the `holidays` package, and/or
    iCalendar sources (all-day events close dates, timed events are closures)."""

    country: str | None = None
    subdiv: str | None = None
    categories: tuple[str, ...] | None = None
    ics: tuple[IcsHolidays, ...] = ()

    def country_table(self) -> holidays.HolidayBase | None:
        """A lazily expanding holiday table (years are computed on first lookup)."""
        if self.country is None:
            return None
        return holidays.country_holidays(
            self.country, subdiv=self.subdiv, categories=self.categories
        )

    def build(self) -> HolidayTable:
        """The closed dates of every source: `day in table`, `table.get(day)` (its name)."""
        return HolidayTable(self.country_table(), self.ics)


class HolidayTable:
    """Whether a local date is a holiday, by the country table or any iCalendar source."""

    def __init__(self, country: holidays.HolidayBase | None, ics: tuple[IcsHolidays, ...]) -> None:
        self.country = country
        self.ics = ics

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        if self.country is not None and day in self.country:
            return True
        return any(source.is_closed(day) for source in self.ics)

    def get(self, day: date, default: str | None = None) -> str | None:
        if self.country is not None and day in self.country:
            return str(self.country.get(day))
        for source in self.ics:
            name = source.name_of(day)
            if name is not None:
                return name
        return default


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


class _Reader:
    """Validates a parsed TOML document; knows the source name for error messages.

    `ics` paths are read relative to `base_dir`; with `allow_ics_paths` false (definitions
    that came over the network) an `ics` key is refused, and only `ics_text` is accepted.
    """

    def __init__(self, source: str, base_dir: Path | None, allow_ics_paths: bool) -> None:
        self.source = source
        self.base_dir = base_dir if base_dir is not None else Path(source).parent
        self.allow_ics_paths = allow_ics_paths

    def error(self, key: str, problem: str, value: Any) -> CalendarError:
        return CalendarError(f"{self.source}: {key}: {problem}: {value!r}", field=key, value=value)

    def spec(self, data: Mapping[str, Any]) -> CalendarSpec:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.error(key, f"unknown key (allowed: {', '.join(_TOP_KEYS)})", key)
        title = data.get("name", Path(self.source).stem)
        if not isinstance(title, str) or not title.strip():
            raise self.error("name", "must be a non-empty string", title)
        return CalendarSpec(
            title=title,
            timezone=self.timezone(data.get("timezone")),
            hours=self.hours(data.get("hours", {})),
            holidays=self.holidays(data["holidays"]) if "holidays" in data else None,
            dates=self.dates(data.get("dates", {})),
            closures=self.closures(data.get("closures", [])),
            source=self.source,
        )

    def timezone(self, value: Any) -> ZoneInfo:
        if value is None:
            raise self.error("timezone", "missing; give an IANA zone such as 'Europe/London'", None)
        if not isinstance(value, str):
            raise self.error("timezone", "must be an IANA zone name", value)
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise self.error("timezone", "unknown time zone", value) from None

    def hours(self, value: Any) -> tuple[tuple[Window, ...], ...]:
        if not isinstance(value, Mapping):
            raise self.error("hours", "must be a table of weekday = [windows]", value)
        week: list[tuple[Window, ...]] = [() for _ in WEEKDAYS]
        seen: set[int] = set()
        for day, windows in value.items():
            index = _WEEKDAY_NAMES.get(day)
            if index is None:
                raise self.error(f"hours.{day}", "unknown weekday (use mon..sun)", day)
            if index in seen:
                raise self.error(f"hours.{day}", "weekday given twice", day)
            seen.add(index)
            week[index] = self.windows(f"hours.{day}", windows)
        return tuple(week)

    def windows(self, key: str, value: Any) -> tuple[Window, ...]:
        if not isinstance(value, list):
            raise self.error(key, 'must be a list of windows such as ["08:00-17:00"]', value)
        return tuple(self.window(f"{key}[{i}]", text) for i, text in enumerate(value))

    def window(self, key: str, text: Any) -> Window:
        match = _WINDOW.match(text) if isinstance(text, str) else None
        if match is None:
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

    def holidays(self, value: Any) -> HolidaySource:
        if not isinstance(value, Mapping):
            raise self.error(
                "holidays", "must be a table with country, subdiv, categories, ics", value
            )
        for key in value:
            if key not in _HOLIDAY_KEYS:
                raise self.error(f"holidays.{key}", "unknown key", key)
        ics = self.ics_files(value["ics"]) if "ics" in value else ()
        if "ics_text" in value:
            ics += (self.ics_text(value["ics_text"]),)
        country = value.get("country")
        if country is None and ics:  # iCalendar sources alone
            for key in ("subdiv", "categories"):
                if key in value:
                    raise self.error(f"holidays.{key}", "needs holidays.country", value[key])
            return HolidaySource(ics=ics)
        if not isinstance(country, str):
            raise self.error("holidays.country", "must be a country code such as 'US'", country)
        subdiv = value.get("subdiv")
        if subdiv is not None and not isinstance(subdiv, str):
            raise self.error("holidays.subdiv", "must be a subdivision code such as 'AZ'", subdiv)
        categories = value.get("categories")
        if categories is not None and (
            not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)
        ):
            raise self.error("holidays.categories", "must be a list of strings", categories)
        try:
            holidays.country_holidays(country)
        except NotImplementedError:
            raise self.error("holidays.country", "unknown holiday country", country) from None
        source = HolidaySource(country, subdiv, tuple(categories) if categories else None, ics)
        try:
            source.country_table()
        except NotImplementedError:
            raise self.error(
                "holidays.subdiv", f"unknown subdivision of {country}", subdiv
            ) from None
        except ValueError:
            raise self.error("holidays.categories", "unknown category", categories) from None
        return source

    def ics_files(self, value: Any) -> tuple[IcsHolidays, ...]:
        if not self.allow_ics_paths:
            raise self.error(
                "holidays.ics", "file paths are not accepted here; give holidays.ics_text", value
            )
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise self.error("holidays.ics", 'must be a list of file paths ["team.ics"]', value)
        sources = []
        for index, text in enumerate(value):
            key = f"holidays.ics[{index}]"
            path = self.base_dir / text
            try:
                content = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise self.error(
                    key,
                    f"cannot read iCalendar file {str(path)!r} ({exc.__class__.__name__})",
                    text,
                ) from None
            sources.append(self.ics_source(content, str(path), key))
        return tuple(sources)

    def ics_text(self, value: Any) -> IcsHolidays:
        if not isinstance(value, str) or not value.strip():
            raise self.error(
                "holidays.ics_text", "must be iCalendar text (BEGIN:VCALENDAR...)", value
            )
        return self.ics_source(value, "holidays.ics_text", "holidays.ics_text")

    def ics_source(self, text: str, name: str, key: str) -> IcsHolidays:
        try:
            return IcsHolidays.parse(text, name, field_name=key)
        except CalendarError as exc:  # name the calendar too, and the key, once
            message = exc.message.removeprefix(f"{key}: ")
            raise CalendarError(
                f"{self.source}: {key}: {message}", field=key, value=exc.value
            ) from None

    def dates(self, value: Any) -> dict[date, tuple[Window, ...]]:
        if not isinstance(value, Mapping):
            raise self.error("dates", 'must be a table of "YYYY-MM-DD" = [windows]', value)
        result: dict[date, tuple[Window, ...]] = {}
        for key, windows in value.items():
            day = self.date(f"dates.{key}", key)
            result[day] = self.windows(f"dates.{key}", windows)
        return result

    def date(self, key: str, value: Any) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(key, "bad date (expected YYYY-MM-DD)", value)

    def closures(self, value: Any) -> tuple[Closure, ...]:
        if not isinstance(value, list):
            raise self.error("closures", "must be an array of tables [[closures]]", value)
        result = []
        for index, item in enumerate(value):
            key = f"closures[{index}]"
            if not isinstance(item, Mapping):
                raise self.error(key, "must be a table with start and end", item)
            for sub in item:
                if sub not in _CLOSURE_KEYS:
                    raise self.error(f"{key}.{sub}", "unknown key", sub)
            start = self.moment(f"{key}.start", item.get("start"))
            end = self.moment(f"{key}.end", item.get("end"))
            if (start.tzinfo is None) != (end.tzinfo is None):
                raise self.error(f"{key}.end", "mixes local and offset datetimes", item.get("end"))
            if end <= start:
                raise self.error(f"{key}.end", "must be after start", item.get("end"))
            result.append(Closure(start, end))
        return tuple(result)

    def moment(self, key: str, value: Any) -> datetime:
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


def parse_calendar_definition(
    data: Mapping[str, Any],
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
    return _Reader(source, base_dir, allow_ics_paths).spec(data)


def parse_calendar(data: Mapping[str, Any], source: str = "<calendar>") -> CalendarSpec:
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


def calendar_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Folders searched for NAME.toml: $SLA_ENGINE_CALENDARS (in order), then calendars/."""
    env = os.environ if env is None else env
    extra = [Path(p) for p in env.get(CALENDARS_ENV, "").split(":") if p.strip()]
    return [*extra, PROJECT_CALENDARS]


def is_calendar_path(name: str | Path) -> bool:
    """A name that designates a file rather than a calendar to look up."""
    text = str(name)
    return isinstance(name, Path) or "/" in text or os.sep in text or text.endswith(".toml")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
