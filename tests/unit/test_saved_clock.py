"""Saving and resuming a ticket's replay (`TicketReplay.dump` / `load`) is exact.

Random logs (pauses, replies, policy and calendar changes, solves and reopens) are replayed
twice: whole, and one event at a time with the replay saved as JSON text and resumed between
every two events. The states at any instant and the saved JSON must be equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.core.calendar import Calendar, load_calendar
from sla_engine.core.clock import Event, evaluate, replay_order
from sla_engine.core.policies import MetricPolicy, Policy, default_policies
from sla_engine.core.ticket_replay import TicketReplay, policies_fingerprint
from tests.unit.test_ticket_calendar import berlin, write_team_calendars

H = timedelta(hours=1)
M = timedelta(minutes=1)
FULL = Policy(
    "full",
    MappingProxyType(
        {
            "first_response": MetricPolicy("first_response", "smartertools", 4 * H, target=H),
            "next_response": MetricPolicy("next_response", "24x7", 2 * H, pausable=True),
            "resolution": MetricPolicy(
                "resolution", "smartertools", 8 * H, target=6 * H, pausable=True
            ),
        }
    ),
)
FROM_START = Policy(
    "from_start",
    MappingProxyType(
        {
            "first_response": MetricPolicy(
                "first_response", "24x7", 2 * H, retarget="from_start", fixed_calendar=True
            ),
            "resolution": MetricPolicy(
                "resolution", "24x7", 4 * H, retarget="from_start", pausable=True
            ),
        }
    ),
    calendar_after_first_response="smartertools",
)
POLICIES: Mapping[str, Policy] = {
    **default_policies(),
    FULL.name: FULL,
    FROM_START.name: FROM_START,
}
TYPES = [
    "agent_reply",
    "customer_reply",
    "pending",
    "open",
    "solved",
    "reopened",
    "policy_changed",
    "not_an_emergency",
    "calendar_changed",
    "closed",
    "created",
]


@pytest.fixture(scope="module")
def calendars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Calendar]:
    folder: Path = tmp_path_factory.mktemp("teams")
    write_team_calendars(folder)
    found = {name: load_calendar(folder / f"{name}.toml") for name in ("berlin", "sydney")}
    found.update({name: load_calendar(name) for name in ("24x7", "smartertools")})
    return found


@st.composite
def logs(draw: st.DrawFn) -> tuple[str, str | None, list[Event]]:
    count = draw(st.integers(0, 14))
    events = []
    for seq in range(1, count + 1):
        kind = draw(st.sampled_from(TYPES))
        data: dict[str, object] = {}
        if kind == "policy_changed":
            data["policy"] = draw(st.sampled_from(sorted(POLICIES)))
        elif kind == "calendar_changed":
            data["calendar"] = draw(st.sampled_from(["berlin", "sydney", "smartertools", None]))
        minute = draw(st.integers(-60, 4 * 24 * 60))
        events.append(Event(f"e{seq}", kind, berlin(23, 8) + minute * M, seq, data))
    policy = draw(st.sampled_from(sorted(POLICIES)))
    calendar = draw(st.sampled_from([None, "berlin", "sydney"]))
    return policy, calendar, events


@settings(max_examples=300, deadline=None)
@given(logs(), st.integers(0, 5 * 24 * 60))
def test_resumed_replay_equals_the_whole_replay(
    calendars: dict[str, Calendar],
    log: tuple[str, str | None, list[Event]],
    minute: int,
) -> None:
    policy, ticket_calendar, events = log
    created = berlin(23, 8)
    at = created + minute * M
    load = calendars.__getitem__
    whole = TicketReplay.begin(policy, created, POLICIES, load, ticket_calendar)
    saved = json.dumps(whole.dump())
    for event in replay_order(events):
        whole.apply(event)
        resumed = TicketReplay.load(json.loads(saved), created, POLICIES, load)
        resumed.apply(event)
        saved = json.dumps(resumed.dump())
        assert saved == json.dumps(whole.dump())
    resumed = TicketReplay.load(json.loads(saved), created, POLICIES, load)
    if all(e.occurred_at <= at for e in events):
        reference = evaluate(
            "T-1",
            policy,
            created,
            events,
            POLICIES,
            at,
            calendars=load,
            ticket_calendar=ticket_calendar,
        )
        assert resumed.state("T-1", at) == reference
        assert resumed.state("T-1", at).to_json(details=True) == reference.to_json(details=True)
    assert resumed.state("T-1", at) == whole.state("T-1", at)


def test_state_leaves_the_replay_as_it_was(calendars: dict[str, Calendar]) -> None:
    replay = TicketReplay.begin("standard", berlin(23, 8), POLICIES, calendars.__getitem__)
    before = replay.dump()
    replay.state("T-1", berlin(30, 8))  # long past the breach
    assert replay.dump() == before


def test_fingerprint_follows_what_the_clock_reads() -> None:
    base = policies_fingerprint(POLICIES)
    assert policies_fingerprint(dict(POLICIES)) == base
    changed = dict(POLICIES)
    changed["full"] = Policy("full", MappingProxyType({**FULL.metrics}))
    assert policies_fingerprint(changed) == base
    longer = MetricPolicy("first_response", "smartertools", 5 * H, target=H)
    changed["full"] = Policy("full", MappingProxyType({**FULL.metrics, "first_response": longer}))
    assert policies_fingerprint(changed) != base


def test_saved_instants_keep_microseconds(calendars: dict[str, Calendar]) -> None:
    created = berlin(23, 8) + timedelta(microseconds=7)
    event = Event("e1", "pending", created + timedelta(seconds=1, microseconds=3), 1)
    replay = TicketReplay.begin("full", created, POLICIES, calendars.__getitem__)
    replay.apply(event)
    resumed = TicketReplay.load(
        json.loads(json.dumps(replay.dump())), created, POLICIES, calendars.__getitem__
    )
    at = datetime(2026, 12, 1, tzinfo=created.tzinfo)
    assert resumed.state("T-1", at) == replay.state("T-1", at)
