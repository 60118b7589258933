"""The RSAA replay (pure): grants, revocations and closes in event time, whatever their
arrival order, with the audit trail up to the instant asked about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sla_engine.credits.rsaa import LogEvent, closed_at, rsaa_state

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_seq = iter(range(1, 1_000))


def event(type_: str, minutes: int, **data: Any) -> LogEvent:
    seq = next(_seq)
    at = T0 + timedelta(minutes=minutes)
    return LogEvent(f"e{seq}", type_, at, seq, data, received_at=at + timedelta(seconds=1))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_no_events_is_no_agreement() -> None:
    state = rsaa_state("T-1", [], at(0))
    assert (state.status, state.granted, state.trail) == ("none", False, ())


def test_a_grant_then_a_revocation_in_time() -> None:
    log = [event("rsaa_granted", 10, granted_by="ann"), event("rsaa_revoked", 20, revoked_by="bo")]
    during = rsaa_state("T-1", log, at(15))
    assert (during.status, during.granted_by, during.granted_at) == ("granted", "ann", at(10))
    after = rsaa_state("T-1", log, at(25))
    assert (after.status, after.revoked_at) == ("revoked", at(20))
    assert [(r.action, r.by, r.reason) for r in after.trail] == [
        ("granted", "ann", "granted"),
        ("revoked", "bo", "revoked"),
    ]


def test_closing_the_ticket_revokes_the_agreement_as_the_system() -> None:
    log = [event("rsaa_granted", 10, granted_by="ann"), event("closed", 30)]
    state = rsaa_state("T-1", log, at(40))
    assert (state.status, state.revoked_at) == ("revoked", at(30))
    assert (state.trail[-1].by, state.trail[-1].reason) == ("system", "ticket closed")


def test_a_close_without_an_agreement_leaves_no_trail() -> None:
    assert rsaa_state("T-1", [event("closed", 5)], at(10)).trail == ()


def test_a_late_event_lands_where_it_happened() -> None:
    revoked = event("rsaa_revoked", 50)  # arrives first, happened last
    granted = event("rsaa_granted", 10, granted_by="ann")
    state = rsaa_state("T-1", [revoked, granted], at(60))
    assert [r.action for r in state.trail] == ["granted", "revoked"]
    assert rsaa_state("T-1", [revoked, granted], at(30)).granted


def test_the_state_as_json_names_every_instant_in_iso_8601() -> None:
    log = [event("rsaa_granted", 10, granted_by="ann")]
    body = rsaa_state("T-1", log, at(15)).to_json()
    assert body["status"] == "granted"
    assert body["at"] == at(15).isoformat()
    assert body["granted_at"] == at(10).isoformat()
    assert body["revoked_at"] is None
    (record,) = body["trail"]
    assert record["occurred_at"] == at(10).isoformat()
    assert record["recorded_at"] == (at(10) + timedelta(seconds=1)).isoformat()


def test_closed_at_follows_closes_and_reopens_in_event_time() -> None:
    log = [event("closed", 10), event("reopened", 20), event("closed", 30)]
    assert [closed_at(log, at(m)) for m in (5, 15, 25, 35)] == [False, True, False, True]
