"""Reading a calendar file's `[holidays]` table into a `HolidaySource`, checked.

Keys: `country` (a `holidays` package country code), `subdiv`, `categories`, `ics` (iCalendar
files, relative to the calendar file's folder) and `ics_text` (inline iCalendar). Every
problem raises `CalendarError` naming the calendar, the key and the bad value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import holidays

from sla_engine.core.holiday_sources import HolidaySource
from sla_engine.core.ics_holidays import IcsHolidays
from sla_engine.core.toml_reader import key_path
from sla_engine.errors import CalendarError

_HOLIDAY_KEYS = ("country", "subdiv", "categories", "ics", "ics_text")

ErrorFor = Callable[[str, str, object], CalendarError]
"""`error(key, problem, value)`: the calendar reader's error, naming its source."""


class HolidaysReader:
    """Validates one `[holidays]` table of the calendar `source`.

    `ics` paths are read relative to `base_dir`; with `allow_ics_paths` false (definitions
    that came over the network) an `ics` key is refused, and only `ics_text` is accepted.
    """

    def __init__(self, source: str, base_dir: Path, allow_ics_paths: bool, error: ErrorFor) -> None:
        self.source = source
        self.base_dir = base_dir
        self.allow_ics_paths = allow_ics_paths
        self.error = error

    def read(self, value: object) -> HolidaySource:
        if not isinstance(value, Mapping):
            raise self.error(
                "holidays", "must be a table with country, subdiv, categories, ics", value
            )
        for key in value:
            if key not in _HOLIDAY_KEYS:
                raise self.error(key_path("holidays", key), "unknown key", key)
        ics = self.ics_files(value["ics"]) if "ics" in value else ()
        if "ics_text" in value:
            ics += (self.ics_text(value["ics_text"]),)
        if value.get("country") is None and ics:  # iCalendar sources alone
            for key in ("subdiv", "categories"):
                if key in value:
                    raise self.error(
                        key_path("holidays", key), "needs holidays.country", value[key]
                    )
            return HolidaySource(ics=ics)
        return self.country(value, ics)

    def country(self, value: Mapping[str, object], ics: tuple[IcsHolidays, ...]) -> HolidaySource:
        """A country's public holidays (with its subdivision and categories), plus `ics`."""
        country = value.get("country")
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

    def ics_files(self, value: object) -> tuple[IcsHolidays, ...]:
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

    def ics_text(self, value: object) -> IcsHolidays:
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
