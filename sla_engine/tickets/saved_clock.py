"""A ticket's saved clock: the replay after its events so far, kept as JSON beside the ticket.

What is saved with the replay, and why each part is there:

- ``applied``: how many events it has applied (checkpoints are taken every so many);
- ``last``: the ``occurred_at`` of the last event in replay order. A new event dated at or
  after it comes last in replay order too (its arrival ``seq`` is the largest), so it is
  applied to the saved replay as is; an earlier one is a late event (replayed from a
  checkpoint);
- ``calendars``: the revision of each calendar the replay used (read before the calendar
  itself, so a version added in between makes the saved one look older, never newer). When
  any has changed the saved replay is not trusted and the log is replayed whole;
- ``policies``: a digest of the clock's policy settings; another config file, a whole replay.

Pure apart from the calendar source it asks for revisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sla_engine.core.calendar import Calendar
from sla_engine.core.calendar_source import CalendarSource
from sla_engine.core.clock import Event
from sla_engine.core.metric_clock import optional_instant, optional_us
from sla_engine.core.policies import Policy
from sla_engine.core.ticket_replay import TicketReplay
from sla_engine.json_types import JsonObject

FORMAT = 1


class EventRow(Protocol):
    """What the replay reads of an event (a log row or a :class:`Event`)."""

    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def data(self) -> object: ...


class TrackedCalendars:
    """A calendar loader over a source that notes the revision of each calendar it hands out
    (``known_at``: the versions known then, for answers about the past)."""

    def __init__(
        self,
        source: CalendarSource,
        revisions: Mapping[str, int] | None = None,
        *,
        known_at: datetime | None = None,
    ) -> None:
        self.source = source
        self.known_at = known_at
        self.revisions: dict[str, int] = dict(revisions or {})

    def __call__(self, name: str) -> Calendar:
        if name not in self.revisions:
            self.revisions[name] = self.source.revision(name)
        if self.known_at is None:
            return self.source.calendar(name)
        return self.source.calendar(name, known_at=self.known_at)


@dataclass
class SavedClock:
    """A replay with what it takes to trust it later."""

    replay: TicketReplay
    applied: int
    last: datetime | None
    calendars: TrackedCalendars

    def to_json(self, fingerprint: str) -> JsonObject:
        return {
            "format": FORMAT,
            "policies": fingerprint,
            "calendars": dict(sorted(self.calendars.revisions.items())),
            "applied": self.applied,
            "last": optional_us(self.last),
            "replay": self.replay.dump(),
        }

    def apply(self, event: Event | EventRow) -> None:
        """Apply the next event in replay order: a :class:`~sla_engine.core.clock.Event` or a
        row of the log (read as is: no event object is built for it)."""
        self.replay.step(event.type, event.occurred_at, event.data)
        self.applied += 1
        self.last = event.occurred_at


def resume(
    saved: object,
    *,
    fingerprint: str,
    source: CalendarSource,
    created_at: datetime,
    policies: Mapping[str, Policy],
) -> SavedClock | None:
    """The saved clock ``saved`` (JSON) when it can be trusted now, else None."""
    if not isinstance(saved, Mapping) or saved.get("format") != FORMAT:
        return None
    if saved.get("policies") != fingerprint:
        return None
    revisions = saved["calendars"]
    if any(source.revision(name) != revision for name, revision in revisions.items()):
        return None
    calendars = TrackedCalendars(source, revisions)
    try:
        replay = TicketReplay.load(saved["replay"], created_at, policies, calendars)
    except KeyError:
        return None
    return SavedClock(replay, saved["applied"], optional_instant(saved["last"]), calendars)


def begin(
    *,
    source: CalendarSource,
    initial_policy: str,
    created_at: datetime,
    policies: Mapping[str, Policy],
    ticket_calendar: str | None,
) -> SavedClock:
    """A new ticket's clock, before any event."""
    calendars = TrackedCalendars(source)
    replay = TicketReplay.begin(initial_policy, created_at, policies, calendars, ticket_calendar)
    return SavedClock(replay, 0, None, calendars)
