"""The firing step's pure part: a due timer row becomes a webhook body and one outbox row per
destination (no database: `TimerFiring.event` and `deliveries` take the row as read)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sla_engine.config import Destination
from sla_engine.escalation.firing import TimerFiring
from sla_engine.escalation.outbox import delivery_id
from sla_engine.escalation.store import DueRow

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
BREACH = T0 + timedelta(hours=1)


class AlwaysOpen:
    """Business time is wall time."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def subtract(self, end: datetime, duration: timedelta) -> datetime:
        return end - duration

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        return b - a

    def is_open(self, t: datetime) -> bool:
        return True

    def next_open(self, t: datetime) -> datetime:
        return t


class OpensAt(AlwaysOpen):
    """Closed until `opening`, open from then on."""

    def __init__(self, opening: datetime) -> None:
        self.opening = opening

    def is_open(self, t: datetime) -> bool:
        return t >= self.opening

    def next_open(self, t: datetime) -> datetime:
        return max(t, self.opening)


OFFICE_OPENS = T0 + timedelta(hours=17)
CALENDARS = {"24x7": AlwaysOpen(), "office": OpensAt(OFFICE_OPENS)}
DESTINATIONS = {
    "oncall": Destination("oncall", "webhook", "http://hooks.example/sla"),
    "pd": Destination("pd", "pagerduty", "http://pd.example/enqueue", routing_key="R0UT1NG"),
}


def firing(lookups: list[str] | None = None) -> TimerFiring:
    def calendar(name: str) -> AlwaysOpen:
        if lookups is not None:
            lookups.append(name)
        return CALENDARS[name]

    return TimerFiring(DESTINATIONS, {}, calendar)


def due_row(threshold: str = "75%", targets: list[dict[str, str | None]] | None = None) -> DueRow:
    targets = targets or [{"to": "oncall", "during": None}]
    return DueRow(
        id=7,
        ticket_id="T-1",
        metric="first_response",
        cycle=2,
        threshold=threshold,
        due_at=T0 + timedelta(minutes=45),
        generation=3,
        policy="standard",
        calendar="24x7",
        breach_at=BREACH,
        targets=json.dumps(targets),
    )


def test_the_event_is_the_spec_body_with_business_time_left() -> None:
    now = T0 + timedelta(minutes=46)
    assert firing().event(due_row(), now) == {
        "type": "sla.escalation",
        "ticket_id": "T-1",
        "metric": "first_response",
        "threshold": "75%",
        "status": "active",
        "breach_at": BREACH.isoformat(),
        "business_remaining_s": 14 * 60.0,
        "policy": "standard",
        "occurred_at": (T0 + timedelta(minutes=45)).isoformat(),
    }


def test_after_the_breach_the_event_says_breached_with_negative_time_left() -> None:
    event = firing().event(due_row("repeat:1"), BREACH + timedelta(minutes=5))
    assert event["status"] == "breached"
    assert event["business_remaining_s"] == -300.0


def test_one_outbox_row_per_destination_with_its_kind_and_stable_id() -> None:
    now = T0 + timedelta(minutes=46)
    row = due_row(targets=[{"to": "oncall", "during": None}, {"to": "pd", "during": None}])
    webhook, trigger = firing().deliveries(row, now)
    assert (webhook["kind"], trigger["kind"]) == ("webhook", "trigger")
    assert webhook["id"] == delivery_id("T-1", "first_response", 2, "75%", "oncall", "webhook")
    assert trigger["id"] == delivery_id("T-1", "first_response", 2, "75%", "pd", "trigger")
    for delivery in (webhook, trigger):
        assert delivery["timer_id"] == 7
        assert delivery["status"] == "queued"
        assert delivery["attempts"] == 0
        assert delivery["due_at"] == row.due_at
        assert delivery["not_before"] == now
        assert json.loads(delivery["payload"]) == firing().event(row, now)


def test_a_target_held_by_a_calendar_waits_for_its_opening() -> None:
    now = T0 + timedelta(minutes=46)
    row = due_row(targets=[{"to": "oncall", "during": "office"}])
    (held,) = firing().deliveries(row, now)
    assert held["not_before"] == OFFICE_OPENS


def test_an_unknown_destination_is_still_queued_as_a_webhook() -> None:
    (row,) = firing().deliveries(due_row(targets=[{"to": "gone", "during": None}]), T0)
    assert (row["destination"], row["kind"]) == ("gone", "webhook")


def test_targets_are_parsed_once_per_distinct_text() -> None:
    fire = firing()
    text = due_row().targets
    assert fire.targets(text) is fire.targets(text)
    assert [t.to for t in fire.targets(text)] == ["oncall"]


def test_calendars_are_looked_up_once_per_batch() -> None:
    lookups: list[str] = []
    fire = firing(lookups)
    for _ in range(3):
        fire.event(due_row(), T0)
    assert lookups == ["24x7"]
