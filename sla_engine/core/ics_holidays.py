"""Holidays and closures from iCalendar (RFC 5545) text: `[holidays] ics` and `ics_text`.

Parsed with the maintained `icalendar` library; recurrences (RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides) are expanded by `recurring-ical-events`, lazily for each year a
calendar compiles, so a yearly event closes its date in every year ever asked about.

- An all-day event (DTSTART is a DATE) closes each local date it covers, DTEND exclusive.
- A timed event is a closure: its span is closed whatever the calendar's [dates] say. A
  DTSTART with TZID (or in UTC) is that instant; a floating one is calendar-local (fold=0).
- Cancelled events (STATUS:CANCELLED) close nothing.

Problems are found when the text is read: `IcsHolidays.parse` raises `CalendarError` naming the
file (or `holidays.ics_text`), the line and the event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, cast

import icalendar
import recurring_ical_events
from icalendar.parser import Contentline
from icalendar.prop import vDDDTypes

from sla_engine.errors import CalendarError

_DAY = timedelta(days=1)
_DATE_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID")
_FOLDED = re.compile(r"\r?\n[ \t]")


class _ContentLine(Protocol):
    def parts(self) -> tuple[str, object, str]:
        """(name, parameters, value); `ValueError` when the line cannot be split."""
        ...


# icalendar's `Contentline(text)` constructor has no annotations (its `parts()` has): typed
# here by its documented use, so that this strictly typed module calls it as typed code
_content_line = cast(Callable[[str], _ContentLine], Contentline)


@dataclass(frozen=True)
class YearOfEvents:
    """What an iCalendar source says about one year (with a few days' margin either side)."""

    closed_dates: dict[date, str]
    closures: list[tuple[datetime, datetime]]  # aware, or naive = calendar-local


@dataclass(frozen=True)
class IcsHolidays:
    """One iCalendar source, validated; compares by its name and text."""

    name: str
    text: str
    calendar: icalendar.Calendar = field(compare=False, repr=False)
    years: tuple[int, ...] = field(compare=False, repr=False)
    _expanded: dict[int, YearOfEvents] = field(
        default_factory=dict, compare=False, repr=False, init=False
    )

    @classmethod
    def parse(cls, text: str, name: str, *, field_name: str = "holidays.ics") -> IcsHolidays:
        """Read and check iCalendar text; every problem is a CalendarError naming `name`."""
        return _Checker(text, name, field_name).holidays()

    def year(self, year: int) -> YearOfEvents:
        """Closed dates and closures meeting Dec 29 of year - 1 .. Jan 3 of year + 1."""
        found = self._expanded.get(year)
        if found is None:
            found = self._expanded[year] = self._expand(year)
        return found

    def is_closed(self, day: date) -> bool:
        return day in self.year(day.year).closed_dates

    def name_of(self, day: date) -> str | None:
        return self.year(day.year).closed_dates.get(day)

    def _expand(self, year: int) -> YearOfEvents:
        first, last = date(year - 1, 12, 29), date(year + 1, 1, 4)
        closed: dict[date, str] = {}
        closures: list[tuple[datetime, datetime]] = []
        for event in recurring_ical_events.of(self.calendar).between(first, last):
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            start, end = event_span(event)
            if isinstance(start, datetime):
                assert isinstance(end, datetime)  # both date-times: checked when read
                if end > start:
                    closures.append((start, end))
                continue
            day = max(start, first)
            summary = str(event.get("SUMMARY", "")) or "iCalendar event"
            while day < min(end, last):
                closed.setdefault(day, summary)
                day += _DAY
        return YearOfEvents(closed, closures)


def event_span(event: icalendar.Component) -> tuple[date, date]:
    """(start, end) of one occurrence: two dates for an all-day event, else two datetimes."""
    start = _date_value(event, "DTSTART")
    if "DTEND" in event:
        end = _date_value(event, "DTEND")
    elif "DURATION" in event:
        end = start + cast(timedelta, _value(event, "DURATION"))
    else:  # RFC 5545 3.6.1: one day for a date, an instant for a date-time
        end = start if isinstance(start, datetime) else start + _DAY
    return start, end


class _Checker:
    """Validates a source event by event, naming the line of each problem."""

    def __init__(self, text: str, name: str, field_name: str) -> None:
        self.text = text
        self.name = name
        self.field_name = field_name
        self.lines = list(_unfolded_lines(text))

    def error(self, problem: str, line: int | None = None) -> CalendarError:
        where = f"line {line}: " if line is not None else ""
        return CalendarError(
            f"{self.name}: {where}{problem}", field=self.field_name, value=self.name
        )

    def holidays(self) -> IcsHolidays:
        self.check_nesting()
        try:
            calendar = icalendar.Calendar.from_ical(self.text)
        except (ValueError, IndexError, KeyError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise self.error(f"not valid iCalendar ({reason})", self.bad_line()) from None
        if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
            raise self.error("not an iCalendar file (expected BEGIN:VCALENDAR)", 1)
        starts = [n for n, line in self.lines if line.upper().startswith("BEGIN:VEVENT")]
        years: set[int] = set()
        for index, event in enumerate(calendar.walk("VEVENT")):
            line = starts[index] if index < len(starts) else None
            years.update(self.event_years(event, line))
        holidays = IcsHolidays(self.name, self.text, calendar, tuple(sorted(years)))
        if years:  # one expansion now, so that recurrence errors surface at load
            try:
                holidays.year(min(years))
            except Exception as exc:  # the expander's own errors have no common base
                raise self.error(f"cannot expand recurring events ({exc})") from None
        return holidays

    def event_years(self, event: icalendar.Component, line: int | None) -> set[int]:
        """The years an event names (start, end, its recurrence's UNTIL), once checked."""
        start, end = self.checked_span(event, line)
        years = {start.year}
        rule = event.get("RRULE")
        if rule is None and "RDATE" not in event:
            years.add(end.year)
        for until in rule.get("UNTIL", []) if rule is not None else []:
            years.add(until.year)
        return years

    def checked_span(self, event: icalendar.Component, line: int | None) -> tuple[date, date]:
        """The event's (start, end), its properties checked; an error names event and line."""
        label = f"event {str(event.get('SUMMARY', ''))!r}" if "SUMMARY" in event else "event"
        if "UID" in event:
            label += f" (UID {event['UID']})"

        def fail(problem: str, prop: str | None = None) -> CalendarError:
            return self.error(f"{label}: {problem}", self.property_line(line, prop))

        if event.errors:  # properties icalendar could not parse
            prop, problem = event.errors[0]
            raise fail(f"{prop}: {problem}", prop)
        if "DTSTART" not in event:
            raise fail("DTSTART missing")
        for prop in _DATE_PROPERTIES:
            if prop in event and event[prop].params.get("TZID") and _floating(_value(event, prop)):
                raise fail(f"{prop}: unknown TZID {event[prop].params['TZID']!r}", prop)
        start, end = event_span(event)
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise fail("DTEND and DTSTART must both be dates or both date-times", "DTEND")
        try:
            if end < start:
                raise fail("ends before it starts", "DTEND")
        except TypeError:
            raise fail("mixes floating and zoned times", "DTEND") from None
        return start, end

    def property_line(self, begin: int | None, prop: str | None) -> int | None:
        if begin is None or prop is None:
            return begin
        for number, text in self.lines:
            if number < begin:
                continue
            head = re.split(r"[;:]", text, maxsplit=1)[0].upper()
            if head == prop.upper():
                return number
            if head == "END" and text.upper().startswith("END:VEVENT"):
                break
        return begin

    def check_nesting(self) -> None:
        """Every BEGIN:X has its END:X, in order (icalendar's own message names no line)."""
        if not self.lines or not self.lines[0][1].upper().startswith("BEGIN:VCALENDAR"):
            raise self.error("not an iCalendar file (expected BEGIN:VCALENDAR)", 1)
        open_blocks: list[tuple[int, str]] = []
        for number, text in self.lines:
            head, _, name = text.partition(":")
            head, name = head.strip().upper(), name.strip().upper()
            if head == "BEGIN":
                open_blocks.append((number, name))
            elif head == "END":
                if not open_blocks or open_blocks[-1][1] != name:
                    expected = f"END:{open_blocks[-1][1]}" if open_blocks else "nothing more"
                    raise self.error(f"END:{name} where {expected} was expected", number)
                open_blocks.pop()
        if open_blocks:
            number, name = open_blocks[-1]
            raise self.error(f"BEGIN:{name} is never ended", number)

    def bad_line(self) -> int | None:
        """The first content line icalendar cannot split into name, parameters and value."""
        for number, text in self.lines:
            try:
                _content_line(text).parts()
            except ValueError:
                return number
        return None


def _value(event: icalendar.Component, prop: str) -> object:
    """The value of a date, date-time or duration property (DTSTART, DTEND, RECURRENCE-ID,
    DURATION): icalendar types `event[prop]` as any property type; these parse as
    `vDDDTypes`."""
    return cast(vDDDTypes, event[prop]).dt


def _date_value(event: icalendar.Component, prop: str) -> date:
    """A DTSTART or DTEND: a date (all-day) or a datetime (a TIME or PERIOD value is none)."""
    return cast(date, _value(event, prop))


def _floating(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None


def _unfolded_lines(text: str) -> Iterator[tuple[int, str]]:
    """Content lines with folding undone (RFC 5545 3.1), each with its first physical line."""
    number = 1
    for logical in re.split(r"\r?\n(?![ \t])", text):
        if logical.strip():
            yield number, _FOLDED.sub("", logical)
        number += logical.count("\n") + 1
