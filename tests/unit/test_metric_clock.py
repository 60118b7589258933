"""The metric clock computes in microseconds on the calendar's timeline; its answers are those
of the calendar's datetime methods, saved clocks of earlier releases resume, and a log row is
applied as its event would be."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings

from sla_engine.core.calendar import Calendar, load_calendar
from sla_engine.core.clock import Event, evaluate
from sla_engine.core.clock_values import MetricState, metric_state
from sla_engine.core.ticket_replay import TicketReplay
from sla_engine.tickets.saved_clock import SavedClock, TrackedCalendars
from sla_engine.tickets.store import StoredEvent
from tests.unit.test_saved_clock import POLICIES, calendars, logs
from tests.unit.test_ticket_calendar import berlin

__all__ = ["calendars"]  # the module's fixture, used here too


class ProtocolOnly:
    """A calendar that is only the `BusinessCalendar` protocol (no timeline to reach)."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.tz = calendar.tz

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return self.calendar.add(start, duration)

    def subtract(self, end: datetime, duration: timedelta) -> datetime:
        return self.calendar.subtract(end, duration)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        return self.calendar.elapsed(a, b)

    def is_open(self, t: datetime) -> bool:
        return self.calendar.is_open(t)

    def next_open(self, t: datetime) -> datetime:
        return self.calendar.next_open(t)


@settings(max_examples=100, deadline=None)
@given(logs())
def test_a_protocol_calendar_answers_as_the_calendar_itself(
    calendars: dict[str, Calendar], log: tuple[str, str | None, list[Event]]
) -> None:
    policy, ticket_calendar, events = log
    wrapped = {name: ProtocolOnly(cal) for name, cal in calendars.items()}
    created, at = berlin(23, 8), berlin(27, 12)

    def run(lookup: Any) -> Any:
        return evaluate(
            "T-1",
            policy,
            created,
            events,
            POLICIES,
            at,
            calendars=lookup,
            ticket_calendar=ticket_calendar,
        )

    direct, through = run(calendars.__getitem__), run(wrapped.__getitem__)
    assert through == direct
    assert through.to_json(details=True) == direct.to_json(details=True)


SAVED_BEFORE = {  # TicketReplay.dump() of the release that computed with datetimes
    "policy": "full",
    "calendar": "24x7",
    "status": "pending",
    "first_response_at": 1795420800000000,
    "unanswered_since": 1795426200000000,
    "clocks": {
        "first_response": [1, "full", "smartertools", 1795417200000000, 1795417200000000,
                           1795417200000000, 0, 0, 0, None, None, None, 1795420800000000,
                           "achieved"],
        "resolution": [1, "full", "24x7", 1795417200000000, 1795417200000000, 1795507200000000,
                       0, 0, 32400000000, 1795507200000000, None, None, None, None],
        "next_response": [1, "full", "24x7", 1795426200000000, 1795426200000000,
                          1795426200000000, 0, 0, 0, 1795428000000000, None, None, None, None],
    },
}  # fmt: skip
LOG = [
    Event("e1", "agent_reply", berlin(23, 9), 1),
    Event("e2", "customer_reply", berlin(23, 10, 30), 2),
    Event("e3", "pending", berlin(23, 11), 3),
    Event("e4", "calendar_changed", berlin(24, 9), 4, {"calendar": "24x7"}),
    Event("e5", "open", berlin(25, 9), 5),
]


def test_a_replay_saved_by_the_earlier_release_resumes_exactly(
    calendars: dict[str, Calendar],
) -> None:
    load = calendars.__getitem__
    created, at = berlin(23, 8), berlin(26, 12)
    whole = TicketReplay.begin("full", created, POLICIES, load)
    for event in LOG[:4]:
        whole.apply(event)
    assert whole.dump() == SAVED_BEFORE  # the saved shape has not changed
    resumed = TicketReplay.load(json.loads(json.dumps(SAVED_BEFORE)), created, POLICIES, load)
    resumed.apply(LOG[4])
    reference = evaluate("T-1", "full", created, LOG, POLICIES, at, calendars=load)
    assert resumed.state("T-1", at) == reference
    answer = resumed.state("T-1", at).to_json(details=True)
    assert answer == reference.to_json(details=True)
    resolution = answer["metrics"]["resolution"]  # as the earlier release answered
    assert resolution["breach_at"] == "2026-11-25T16:00:00+00:00"
    assert resolution["business_elapsed_s"] == 97200.0
    assert answer["metrics"]["first_response"]["stopped_at"] == "2026-11-23T01:00:00-07:00"


def test_a_log_row_is_applied_as_its_event() -> None:
    created = datetime(2026, 11, 23, 15, tzinfo=UTC)

    def clock() -> SavedClock:
        tracked = TrackedCalendars(_Files())
        replay = TicketReplay.begin("full", created, POLICIES, tracked)
        return SavedClock(replay, 0, None, tracked)

    by_event, by_row = clock(), clock()
    for event in LOG:
        when = event.occurred_at.astimezone(UTC)
        data = dict(event.data)
        by_event.apply(Event(event.event_id, event.type, when, event.seq, data))
        by_row.apply(StoredEvent(event.seq, event.event_id, event.type, when, data, when))
    assert by_row.to_json("x") == by_event.to_json("x")
    assert by_row.applied == 5 and by_row.last == LOG[-1].occurred_at


class _Files:
    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        return load_calendar(name)

    def revision(self, name: str) -> int:
        return 0


def test_a_metric_state_built_fast_is_the_dataclass_itself(calendars: dict[str, Calendar]) -> None:
    state = evaluate(
        "T-1", "full", berlin(23, 8), LOG, POLICIES, berlin(26, 12), calendars=load_calendar
    )
    for metric in state.metrics.values():
        fields = {name: getattr(metric, name) for name in MetricState.__dataclass_fields__}
        again = MetricState(**fields)
        built = metric_state(**fields)
        assert built == again and hash(built) == hash(again) and repr(built) == repr(again)
        with pytest.raises(FrozenInstanceError):
            built.status = "active"  # type: ignore[misc]
    fields.pop("paused")  # a field left out takes its default, as in the constructor
    assert metric_state(**fields).paused is False
    with pytest.raises(TypeError, match="late"):
        metric_state(**fields, late=True)
