"""sla_engine: exact business-hours deadlines, ticket SLA clocks, escalations and credits."""

from sla_engine.core.calendar import Calendar, list_calendars, load_calendar
from sla_engine.core.durations import format_duration, parse_duration
from sla_engine.errors import CalendarError

__all__ = [
    "Calendar",
    "CalendarError",
    "format_duration",
    "list_calendars",
    "load_calendar",
    "parse_duration",
]
