"""Shared by the stored-calendar tests: a settable clock, weekday calendars as a definition
(dict) or as a calendar file (TOML), and a calendar store over a migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sla_engine.calendar_store import CalendarStore, build_calendar_store
from sla_engine.composition import Services
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ESCALATING_CONFIG = """\
[[destinations]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[policies.standard.first_response]
escalate = [{at = "50%", to = "oncall"}, {at = "100%", to = "oncall"}]
"""
"""A config whose standard policy escalates (to a webhook nobody listens on): a re-plan has
pending timers to rewrite. Tests append their own policies."""


class Clock:
    """A clock the test sets: `clock.now = ...`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    @staticmethod
    def of(services: Services) -> Clock:
        """The test clock the composed services were built with."""
        clock = services.tickets.clock
        assert isinstance(clock, Clock)
        return clock


def weekdays(window: str, timezone: str = "America/Phoenix", **more: Any) -> dict[str, Any]:
    """A calendar definition open `window` ("08:00-17:00") Monday to Friday."""
    return {"timezone": timezone, "hours": {d: [window] for d in WEEKDAYS}, **more}


def support_hours(window: str, timezone: str = "America/Phoenix") -> dict[str, Any]:
    """`smartertools` as a stored version: `window` on weekdays, Arizona's public holidays."""
    return {
        "name": "SmarterTools support hours",
        **weekdays(window, timezone),
        "holidays": {"country": "US", "subdiv": "AZ"},
    }


def weekdays_toml(name: str, window: str = "08:00-17:00", timezone: str = "America/Phoenix") -> str:
    """The calendar file of `weekdays(window, timezone)`, named `name`."""
    hours = "".join(f'{d} = ["{window}"]\n' for d in WEEKDAYS)
    return f'name = "{name}"\ntimezone = "{timezone}"\n\n[hours]\n{hours}'


@contextmanager
def calendar_store(
    url: str, clock: Callable[[], datetime]
) -> Iterator[tuple[CalendarStore, sa.Engine]]:
    """The calendar store of a migrated database at `url`: (store, engine), closed after."""
    upgrade(url)
    engine = make_engine(url)
    calendars = build_calendar_store(engine, make_sessionmaker(engine), clock)
    try:
        yield calendars, engine
    finally:
        calendars.close()
        engine.dispose()
