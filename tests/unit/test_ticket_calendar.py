"""A ticket's own calendar and `calendar_changed` in the pure clock (SPEC section 6).

Berlin and Sydney are two teams' hours, Mon-Fri 09:00-17:00 local. 2026-11-23 is a Monday;
in November Berlin is UTC+1 and Sydney UTC+11 (daylight time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla_engine.core.calendar import Calendar, load_calendar
from sla_engine.core.clock import Event, TicketState, evaluate
from sla_engine.core.policies import MetricPolicy, Policy, default_policies, parse_policies

H = timedelta(hours=1)
M = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
TEAM_HOURS = """
name = "{name} team"
timezone = "{zone}"

[hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
"""


def write_team_calendars(folder: Path) -> None:
    """`berlin.toml` and `sydney.toml` in ``folder``."""
    for name, zone in (("berlin", "Europe/Berlin"), ("sydney", "Australia/Sydney")):
        (folder / f"{name}.toml").write_text(TEAM_HOURS.format(name=name, zone=zone))


@pytest.fixture(scope="module")
def calendars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Calendar]:
    folder = tmp_path_factory.mktemp("teams")
    write_team_calendars(folder)
    found = {name: load_calendar(folder / f"{name}.toml") for name in ("berlin", "sydney")}
    found.update({name: load_calendar(name) for name in ("24x7", "smartertools")})
    return found


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


def sydney(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SYDNEY)


RESOLVING = Policy(
    "resolving",
    MappingProxyType(
        {
            "first_response": MetricPolicy("first_response", "smartertools", 4 * H),
            "resolution": MetricPolicy("resolution", "smartertools", 16 * H, pausable=True),
        }
    ),
)
EMERGENCY_RESOLVING = Policy(
    "emergency_resolving",
    MappingProxyType(
        {
            "first_response": MetricPolicy(
                "first_response", "24x7", H, fixed_calendar=True, retarget="from_start"
            ),
            "resolution": MetricPolicy("resolution", "24x7", 16 * H, pausable=True),
        }
    ),
    calendar_after_first_response="smartertools",
)


def policies() -> Mapping[str, Policy]:
    found = default_policies()
    found.update({RESOLVING.name: RESOLVING, EMERGENCY_RESOLVING.name: EMERGENCY_RESOLVING})
    return found


def run(
    calendars: Mapping[str, Calendar],
    policy: str,
    created: datetime,
    events: list[Event],
    at: datetime,
    ticket_calendar: str | None = None,
) -> TicketState:
    return evaluate(
        "T-1",
        policy,
        created,
        events,
        policies(),
        at,
        calendars=calendars.__getitem__,
        ticket_calendar=ticket_calendar,
    )


def event(seq: int, type_: str, when: datetime, **data: Any) -> Event:
    return Event(f"e{seq}", type_, when, seq, data)


def test_follow_the_sun_three_hours_in_berlin_then_one_in_sydney_breach(
    calendars: dict[str, Calendar],
) -> None:
    """The docs' worked example: a 4-hour first response, 3 business hours spent in Berlin
    (09:00-12:00), then the ticket moves to Sydney, where it is 22:00: closed until 09:00,
    and the 4th hour runs out at 10:00 Sydney time."""
    created = berlin(23, 9)
    moved = [event(1, "calendar_changed", berlin(23, 12), calendar="sydney")]
    before = run(calendars, "standard", created, [], berlin(23, 12), "berlin")
    assert before.calendar == "berlin"
    m = before.metrics["first_response"]
    assert (m.calendar, m.business_elapsed_s, m.breach_at) == ("berlin", 3 * 3600, berlin(23, 13))

    state = run(calendars, "standard", created, moved, sydney(24, 9, 59), "berlin")
    m = state.metrics["first_response"]
    assert state.calendar == "sydney" and m.calendar == "sydney"
    assert m.status == "active"
    assert m.business_elapsed_s == 3 * 3600 + 59 * 60
    assert m.breach_at == sydney(24, 10) == datetime(2026, 11, 23, 23, tzinfo=UTC)
    assert m.breach_at.utcoffset() == timedelta(hours=11)  # reported in Sydney's zone

    late = run(calendars, "standard", created, moved, sydney(24, 10, 1), "berlin")
    m = late.metrics["first_response"]
    assert m.status == "breached" and m.business_remaining_s == -60.0

    # without the move, Berlin's hours would have breached at 13:00 Berlin time
    stay = run(calendars, "standard", created, [], berlin(23, 13, 1), "berlin")
    assert stay.metrics["first_response"].status == "breached"


def test_ticket_calendar_replaces_policy_calendars(calendars: dict[str, Calendar]) -> None:
    state = run(calendars, "resolving", berlin(23, 16), [], berlin(23, 16), "berlin")
    assert {m.calendar for m in state.metrics.values()} == {"berlin"}
    assert state.metrics["first_response"].breach_at == berlin(24, 12)
    assert run(calendars, "resolving", berlin(23, 16), [], berlin(23, 16)).calendar is None


def test_emergency_first_response_stays_24x7_and_the_rest_follows_the_ticket(
    calendars: dict[str, Calendar],
) -> None:
    created = berlin(21, 10)  # a Saturday
    state = run(calendars, "emergency", created, [], created, "sydney")
    m = state.metrics["first_response"]
    assert (m.calendar, m.breach_at) == ("24x7", berlin(21, 11))
    state = run(calendars, "emergency_resolving", created, [], created, "sydney")
    assert state.metrics["first_response"].calendar == "24x7"
    assert state.metrics["resolution"].calendar == "sydney"
    # after the first response, calendar_after_first_response is the ticket's calendar
    replied = [event(1, "agent_reply", berlin(21, 10, 30))]
    state = run(calendars, "emergency_resolving", created, replied, berlin(23, 9), "sydney")
    res = state.metrics["resolution"]
    assert res.calendar == "sydney"
    # resolution is not fixed: Sydney's hours from creation, closed on the weekend, then
    # Monday 09:00-17:00 Sydney (Sunday 23:00 to Monday 07:00 Berlin): 8 hours
    assert res.business_elapsed_s == 8 * 3600


def test_calendar_change_keeps_time_spent_and_moves_running_metrics_only(
    calendars: dict[str, Calendar],
) -> None:
    created = berlin(23, 9)
    log = [
        event(1, "agent_reply", berlin(23, 10)),  # first response achieved on Berlin hours
        event(2, "pending", berlin(23, 11)),
        event(3, "calendar_changed", berlin(23, 12), calendar="sydney"),
        event(4, "open", sydney(24, 10)),
    ]
    state = run(calendars, "resolving", created, log, sydney(24, 11), "berlin")
    fr, res = state.metrics["first_response"], state.metrics["resolution"]
    assert (fr.status, fr.calendar, fr.business_elapsed_s) == ("achieved", "berlin", 3600.0)
    # 2 hours in Berlin, paused across the move, then 1 hour of Sydney's
    assert (res.status, res.calendar) == ("active", "sydney")
    assert res.business_elapsed_s == 3 * 3600


def test_calendar_change_to_null_gives_the_policy_calendars_back(
    calendars: dict[str, Calendar],
) -> None:
    log = [event(1, "calendar_changed", berlin(23, 12), calendar=None)]
    state = run(calendars, "standard", berlin(23, 9), log, berlin(23, 12), "berlin")
    assert state.calendar is None
    assert state.metrics["first_response"].calendar == "smartertools"


def test_change_to_the_calendar_in_force_is_a_no_op(calendars: dict[str, Calendar]) -> None:
    created = berlin(23, 9)
    same = [event(1, "calendar_changed", berlin(23, 12), calendar="berlin")]
    assert run(calendars, "standard", created, same, berlin(23, 14), "berlin") == run(
        calendars, "standard", created, [], berlin(23, 14), "berlin"
    )


def test_late_calendar_change_counts_at_its_occurred_at(calendars: dict[str, Calendar]) -> None:
    """Arrival order does not matter: a move posted after a later reply still counts first."""
    created = berlin(23, 9)
    moved = event(2, "calendar_changed", berlin(23, 12), calendar="sydney")
    reply = event(1, "agent_reply", sydney(24, 9, 30))
    state = run(calendars, "standard", created, [reply, moved], sydney(24, 12), "berlin")
    fr = state.metrics["first_response"]
    assert (fr.status, fr.calendar, fr.business_elapsed_s) == ("achieved", "sydney", 3.5 * 3600)


def test_policy_change_uses_the_ticket_calendar(calendars: dict[str, Calendar]) -> None:
    log = [event(1, "policy_changed", berlin(23, 10), policy="resolving")]
    state = run(calendars, "standard", berlin(23, 9), log, berlin(23, 10), "sydney")
    assert {m.calendar for m in state.metrics.values()} == {"sydney"}


def test_fixed_calendar_is_a_policy_key(tmp_path: Path) -> None:
    found = parse_policies(
        {"standard": {"first_response": {"fixed_calendar": True}}},
        calendars=load_calendar,
    )
    assert found["standard"].metrics["first_response"].fixed_calendar is True
    assert default_policies()["emergency"].metrics["first_response"].fixed_calendar is True
    assert default_policies()["standard"].metrics["first_response"].fixed_calendar is False
