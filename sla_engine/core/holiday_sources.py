"""Where a calendar's holidays come from: a country's public holidays and/or iCalendar text.

`HolidaySource` is the validated `[holidays]` table of a calendar file; `build()` gives the
`HolidayTable` the year compiler asks "is this local date a holiday?".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import holidays

from sla_engine.core.ics_holidays import IcsHolidays


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
