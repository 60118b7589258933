"""The pure SLA clock (SPEC section 2) on the real `smartertools` and `24x7` calendars.

Dates: 2026-11-20 is a Friday; 2026-11-23..25 are ordinary business days (Mon-Wed) on
`smartertools` (Mon-Fri 08:00-17:00 America/Phoenix, UTC-7 all year).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.core.calendar import load_calendar
from sla_engine.core.clock import Event, MetricState, TicketState, evaluate, replay_order
from sla_engine.core.policies import MetricPolicy, Policy, default_policies
from sla_engine.errors import InputError

PHX = ZoneInfo("America/Phoenix")
H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)


def phx(day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, us, tzinfo=PHX)


def metric(name: str, calendar: str, breach: timedelta, **kw: Any) -> MetricPolicy:
    pausable = kw.pop("pausable", name != "first_response")
    return MetricPolicy(metric=name, calendar=calendar, breach=breach, pausable=pausable, **kw)


def policy(name: str, *metrics: MetricPolicy, after: str | None = None) -> Policy:
    return Policy(
        name=name,
        metrics=MappingProxyType({m.metric: m for m in metrics}),
        calendar_after_first_response=after,
    )


def policy_set(*extra: Policy) -> Mapping[str, Policy]:
    found = default_policies()
    found.update({p.name: p for p in extra})
    return found


FULL = policy(
    "full",
    metric("first_response", "smartertools", 4 * H, target=H),
    metric("next_response", "smartertools", 2 * H),
    metric("resolution", "smartertools", 8 * H, target=6 * H),
)
SHORT_FROM_START = policy(
    "short_from_start",
    metric("first_response", "smartertools", 2 * H, retarget="from_start"),
    metric("resolution", "smartertools", 4 * H, retarget="from_start"),
)
SHORT_FROM_CHANGE = policy(
    "short_from_change",
    metric("first_response", "smartertools", 2 * H),
    metric("resolution", "smartertools", 4 * H),
)
GOLD = policy("gold", metric("first_response", "24x7", 30 * M, retarget="from_start"))
EMERGENCY_PLUS = policy(
    "emergency_plus",
    metric("first_response", "24x7", H),
    metric("next_response", "24x7", H),
    metric("resolution", "24x7", 10 * H),
    after="smartertools",
)
EMERGENCY_QUICK = policy(
    "emergency_quick",
    metric("first_response", "24x7", 4 * H),
    metric("resolution", "24x7", 30 * M),
    after="smartertools",
)
ELSEWHERE = policy(
    "elsewhere",
    metric("first_response", "example-lunch-break", 2 * H, pausable=True, retarget="from_start"),
    metric("next_response", "24x7", 3 * H, target=H),
    metric("resolution", "example-overnight-shift", 6 * H, target=2 * H),
    after="24x7",
)
POLICIES = policy_set(
    FULL, SHORT_FROM_START, SHORT_FROM_CHANGE, GOLD, EMERGENCY_PLUS, EMERGENCY_QUICK, ELSEWHERE
)


class Log:
    """Builds an event log; arrival order (seq) is the order of the calls."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, when: datetime, event_id: str | None = None, **data: Any) -> Log:
        seq = len(self.events) + 1
        self.events.append(Event(event_id or f"e{seq}", type_, when, seq, data))
        return self


def run(
    policy_name: str,
    created: datetime,
    log: Log | list[Event],
    at: datetime,
    policies: Mapping[str, Policy] = POLICIES,
) -> TicketState:
    events = log.events if isinstance(log, Log) else log
    return evaluate("T-1", policy_name, created, events, policies, at, calendars=load_calendar)


def fr(state: TicketState) -> MetricState:
    return state.metrics["first_response"]


# --- the seed's cases ---------------------------------------------------------------------------


def test_standard_ticket_friday_afternoon_breaches_monday_morning() -> None:
    created = phx(20, 15)
    state = run("standard", created, Log(), created)
    m = fr(state)
    assert m.breach_at == phx(23, 10) and m.target_at == phx(20, 16)
    assert (m.status, m.cycle, m.calendar, m.running) == ("active", 1, "smartertools", True)
    assert m.started_at == created and m.stopped_at is None
    assert m.business_elapsed_s == 0.0 and m.business_remaining_s == 14400.0
    assert m.calendar_remaining_s == (phx(23, 10) - created).total_seconds()


def test_to_json_has_exactly_the_spec_shape() -> None:
    state = run("standard", phx(23, 8), Log(), phx(23, 9))
    body = state.to_json()
    assert body == {
        "ticket_id": "T-1",
        "policy": "standard",
        "metrics": {
            "first_response": {
                "status": "active",
                "started_at": "2026-11-23T08:00:00-07:00",
                "target_at": "2026-11-23T09:00:00-07:00",
                "breach_at": "2026-11-23T12:00:00-07:00",
                "stopped_at": None,
                "business_elapsed_s": 3600.0,
                "business_remaining_s": 10800.0,
                "calendar_remaining_s": 10800.0,
            }
        },
    }
    detailed = state.to_json(details=True)["metrics"]["first_response"]
    assert detailed["cycle"] == 1 and detailed["calendar"] == "smartertools"
    assert detailed["breach_s"] == 14400.0 and detailed["running"] is True


def test_emergency_ticket_on_a_saturday_breaches_one_hour_later() -> None:
    created = phx(21, 10)
    m = fr(run("emergency", created, Log(), created))
    assert m.breach_at == phx(21, 11) and m.target_at is None
    assert m.calendar == "24x7" and m.business_remaining_s == 3600.0


@pytest.mark.parametrize(
    ("reply_at", "status"),
    [
        (phx(23, 10), "achieved"),  # exactly on breach_at: on time
        (phx(23, 10) + US, "breached"),  # one microsecond late
        (phx(20, 16), "achieved"),
        (phx(24, 9), "breached"),
    ],
)
def test_reply_on_the_deadline_is_on_time_a_microsecond_later_is_not(
    reply_at: datetime, status: str
) -> None:
    state = run("standard", phx(20, 15), Log().add("agent_reply", reply_at), phx(25, 12))
    m = fr(state)
    assert m.status == status and m.stopped_at == reply_at and not m.running
    assert m.breach_at == phx(23, 10)


def test_reply_after_close_when_budget_ran_out_at_close_is_on_time() -> None:
    # Friday 13:00 + 4h = Monday 08:00 (next opening); a Saturday reply spent no more than 4h.
    state = run("standard", phx(20, 13), Log().add("agent_reply", phx(21, 12)), phx(23, 12))
    assert fr(state).breach_at == phx(23, 8)
    assert fr(state).status == "achieved"
    assert fr(state).business_elapsed_s == 4 * 3600.0


def test_reply_posted_late_but_occurred_before_the_deadline_is_achieved() -> None:
    log = Log().add("customer_reply", phx(23, 9)).add("agent_reply", phx(23, 9, 30))
    log.add("agent_reply", phx(23, 8, 30), event_id="late-posted")  # arrives last
    m = fr(run("standard", phx(20, 15), log, phx(23, 12)))
    assert m.status == "achieved" and m.stopped_at == phx(23, 8, 30)
    assert m.business_elapsed_s == 2.5 * 3600  # Friday 15-17 and Monday 08:00-08:30


def test_running_metric_is_breached_after_breach_at_and_keeps_running() -> None:
    on_deadline = fr(run("standard", phx(20, 15), Log(), phx(23, 10)))
    assert on_deadline.status == "active" and on_deadline.business_remaining_s == 0.0
    late = fr(run("standard", phx(20, 15), Log(), phx(23, 11)))
    assert late.status == "breached" and late.running is True
    assert late.business_remaining_s == -3600.0 and late.calendar_remaining_s == -3600.0
    assert late.breach_at == phx(23, 10)


# --- pause / resume ----------------------------------------------------------------------------


def test_pending_pauses_resolution_and_moves_breach_and_target_later() -> None:
    log = Log().add("pending", phx(23, 10)).add("open", phx(23, 12))
    state = run("full", phx(23, 8), log, phx(23, 13))
    res = state.metrics["resolution"]
    # 8h budget + 2h paused from Monday 08:00 on a 9-hour day: Tuesday 09:00.
    assert res.breach_at == phx(24, 9) and res.target_at == phx(23, 16)
    assert res.status == "active" and res.business_elapsed_s == 3 * 3600
    # first_response does not pause: 4h from 08:00.
    assert fr(state).breach_at == phx(23, 12) and fr(state).status == "breached"


def test_paused_metric_reports_paused_with_frozen_remaining_time() -> None:
    log = Log().add("pending", phx(23, 10))
    res = run("full", phx(23, 8), log, phx(23, 11)).metrics["resolution"]
    assert res.status == "paused" and res.paused and res.running
    assert res.business_elapsed_s == 2 * 3600 and res.business_remaining_s == 6 * 3600
    assert res.breach_at == phx(24, 8)  # as if resumed now: 8h + 1h paused so far


def test_pause_over_a_closed_period_costs_no_business_time() -> None:
    log = Log().add("pending", phx(23, 18)).add("open", phx(24, 7))
    res = run("full", phx(23, 8), log, phx(24, 7, 30)).metrics["resolution"]
    assert res.breach_at == phx(23, 16)  # nothing was paused in business time


def test_customer_reply_ends_pending() -> None:
    log = Log().add("pending", phx(23, 10)).add("customer_reply", phx(23, 11))
    res = run("full", phx(23, 8), log, phx(23, 12)).metrics["resolution"]
    # 9h from Monday 08:00 ends at Monday's close: the next opening
    assert res.status == "active" and res.breach_at == phx(24, 8)


def test_pending_after_breach_does_not_undo_it() -> None:
    log = Log().add("pending", phx(23, 17)).add("open", phx(24, 12))
    state = run("short_from_change", phx(23, 8), log, phx(24, 13))
    res = state.metrics["resolution"]
    assert res.status == "breached" and res.breach_at == phx(23, 12)
    paused_now = run(
        "short_from_change", phx(23, 8), Log().add("pending", phx(23, 13)), phx(23, 15)
    ).metrics["resolution"]
    assert paused_now.status == "breached" and paused_now.paused
    assert paused_now.breach_at == phx(23, 12)


def test_pending_on_the_deadline_then_solved_is_achieved() -> None:
    log = Log().add("pending", phx(23, 12)).add("solved", phx(24, 10))
    res = run("short_from_change", phx(23, 8), log, phx(24, 11)).metrics["resolution"]
    assert res.status == "achieved" and res.stopped_at == phx(24, 10)


# --- replies, next_response, solved, closed, reopened --------------------------------------------


def test_next_response_runs_from_the_oldest_unanswered_customer_reply() -> None:
    log = (
        Log()
        .add("customer_reply", phx(23, 8, 30))  # before the first response: no cycle
        .add("agent_reply", phx(23, 9))
        .add("customer_reply", phx(23, 10))
        .add("customer_reply", phx(23, 11))  # does not restart the cycle
        .add("agent_reply", phx(23, 11, 30))
    )
    nr = run("full", phx(23, 8), log, phx(23, 12)).metrics["next_response"]
    assert (nr.status, nr.cycle, nr.started_at, nr.stopped_at) == (
        "achieved",
        1,
        phx(23, 10),
        phx(23, 11, 30),
    )
    assert nr.breach_at == phx(23, 12)
    log.add("customer_reply", phx(23, 16))
    nr2 = run("full", phx(23, 8), log, phx(24, 10)).metrics["next_response"]
    assert (nr2.status, nr2.cycle, nr2.started_at) == ("breached", 2, phx(23, 16))
    assert nr2.breach_at == phx(24, 9)


def test_no_next_response_before_the_first_response() -> None:
    state = run("full", phx(23, 8), Log().add("customer_reply", phx(23, 9)), phx(23, 10))
    assert "next_response" not in state.metrics


def test_solved_stops_resolution_and_fulfils_reply_metrics() -> None:
    on_time = run("full", phx(23, 8), Log().add("solved", phx(23, 11)), phx(23, 12))
    assert on_time.status == "solved"
    assert {n: m.status for n, m in on_time.metrics.items()} == {
        "first_response": "achieved",
        "resolution": "achieved",
    }
    late = run("full", phx(23, 8), Log().add("solved", phx(24, 11)), phx(24, 12))
    assert {n: m.status for n, m in late.metrics.items()} == {
        "first_response": "breached",
        "resolution": "breached",
    }
    assert late.metrics["resolution"].business_remaining_s == -4 * 3600


def test_stopped_metric_reports_values_at_the_stop() -> None:
    log = Log().add("agent_reply", phx(23, 9))
    m = fr(run("full", phx(23, 8), log, phx(25, 9)))
    assert m.business_elapsed_s == 3600 and m.business_remaining_s == 3 * 3600
    assert m.calendar_remaining_s == 3 * 3600


def test_closed_is_final_and_reopened_starts_a_new_resolution_cycle() -> None:
    log = (
        Log().add("agent_reply", phx(23, 9)).add("solved", phx(23, 10)).add("reopened", phx(23, 14))
    )
    res = run("full", phx(23, 8), log, phx(23, 15)).metrics["resolution"]
    assert (res.cycle, res.status, res.started_at) == (2, "active", phx(23, 14))
    assert res.breach_at == phx(24, 13)
    log.add("closed", phx(23, 16)).add("reopened", phx(23, 16, 30)).add("pending", phx(23, 17))
    state = run("full", phx(23, 8), log, phx(24, 9))
    assert state.status == "closed"
    assert (state.metrics["resolution"].cycle, state.metrics["resolution"].status) == (
        2,
        "achieved",
    )


def test_closed_without_solve_stops_everything() -> None:
    state = run("full", phx(23, 8), Log().add("closed", phx(23, 9)), phx(23, 10))
    assert {m.status for m in state.metrics.values()} == {"achieved"}
    assert not any(m.running for m in state.metrics.values())


# --- policy changes ----------------------------------------------------------------------------


def test_policy_change_from_change_starts_a_new_clock_at_the_change() -> None:
    log = Log().add("policy_changed", phx(23, 9), policy="emergency")
    state = run("standard", phx(23, 8), log, phx(23, 9, 30))
    m = fr(state)
    assert state.policy == "emergency"
    assert (m.calendar, m.started_at, m.breach_at, m.cycle) == ("24x7", phx(23, 9), phx(23, 10), 1)
    assert m.target_at is None and m.business_elapsed_s == 1800.0


def test_policy_change_from_start_counts_from_the_original_start_and_may_breach_at_once() -> None:
    log = Log().add("policy_changed", phx(23, 9), policy="gold")
    state = run("standard", phx(23, 8), log, phx(23, 9))
    m = fr(state)
    assert m.started_at == phx(23, 8) and m.breach_at == phx(23, 8, 30)
    assert m.status == "breached" and m.running
    replied = run("standard", phx(23, 8), log.add("agent_reply", phx(23, 9, 5)), phx(23, 10))
    assert fr(replied).status == "breached"


@pytest.mark.parametrize(
    ("target", "breach_at"),
    [
        # 1h paused (09:00-10:00) is kept: from_start -> 08:00 + 4h + 1h; from_change -> 11:00 + 5h
        ("short_from_start", phx(23, 13)),
        ("short_from_change", phx(23, 16)),
    ],
)
def test_policy_change_keeps_accrued_pause_time(target: str, breach_at: datetime) -> None:
    log = (
        Log()
        .add("pending", phx(23, 9))
        .add("open", phx(23, 10))
        .add("policy_changed", phx(23, 11), policy=target)
    )
    res = run("full", phx(23, 8), log, phx(23, 11, 30)).metrics["resolution"]
    assert res.breach_at == breach_at and res.cycle == 1 and res.status == "active"


def test_policy_change_while_pending_keeps_the_metric_paused() -> None:
    log = (
        Log()
        .add("pending", phx(23, 9))
        .add("policy_changed", phx(23, 10), policy="short_from_change")
        .add("open", phx(23, 12))
    )
    res = run("full", phx(23, 8), log, phx(23, 12)).metrics["resolution"]
    # new clock at 10:00, paused until 12:00, 1h credit accrued 09:00-10:00: 10:00 + 4h + 1h + 2h
    assert res.breach_at == phx(24, 8)
    assert run("full", phx(23, 8), log, phx(23, 11)).metrics["resolution"].status == "paused"


def test_policy_change_cancels_missing_metrics_and_starts_new_ones() -> None:
    to_standard = Log().add("policy_changed", phx(23, 9), policy="standard")
    state = run("full", phx(23, 8), to_standard, phx(23, 10))
    assert state.metrics["resolution"].status == "cancelled"
    assert state.metrics["resolution"].stopped_at == phx(23, 9)
    assert fr(state).breach_at == phx(23, 13) and fr(state).status == "active"
    to_full = Log().add("policy_changed", phx(23, 9), policy="full")
    state = run("standard", phx(23, 8), to_full, phx(23, 10))
    assert state.metrics["resolution"].started_at == phx(23, 9)
    assert state.metrics["resolution"].breach_at == phx(24, 8)


def test_policy_change_after_first_response_does_not_restart_it() -> None:
    log = Log().add("agent_reply", phx(23, 9)).add("policy_changed", phx(23, 10), policy="gold")
    m = fr(run("standard", phx(23, 8), log, phx(23, 11)))
    assert m.status == "achieved" and m.calendar == "smartertools"


def test_not_an_emergency_continues_as_standard() -> None:
    log = Log().add("not_an_emergency", phx(21, 10, 30), refund=True)
    state = run("emergency", phx(21, 10), log, phx(21, 12))
    m = fr(state)
    assert state.policy == "standard" and m.calendar == "smartertools"
    assert m.breach_at == phx(23, 12) and m.status == "active"  # Saturday: clock starts Monday


@pytest.mark.parametrize("name", ["standard", "no-such-policy"])
def test_change_to_the_same_or_an_unknown_policy_is_ignored(name: str) -> None:
    log = Log().add("policy_changed", phx(23, 9), policy=name)
    state = run("standard", phx(23, 8), log, phx(23, 10))
    assert state.policy == "standard" and fr(state).breach_at == phx(23, 12)


def test_emergency_other_metrics_run_on_business_hours_after_the_first_response() -> None:
    log = Log().add("agent_reply", phx(21, 10, 30)).add("customer_reply", phx(21, 11))
    state = run("emergency_plus", phx(21, 10), log, phx(21, 12))
    res = state.metrics["resolution"]
    # 30 min spent on 24x7, the remaining 9h30 on smartertools from Monday 08:00.
    assert res.calendar == "smartertools" and res.breach_at == phx(24, 8, 30)
    assert res.business_elapsed_s == 1800.0
    nr = state.metrics["next_response"]
    assert nr.calendar == "smartertools" and nr.breach_at == phx(23, 9)
    assert fr(state).status == "achieved" and fr(state).calendar == "24x7"
    assert state.first_response_at == phx(21, 10, 30)


def test_a_breach_before_the_calendar_switch_stays_where_it_happened() -> None:
    log = Log().add("agent_reply", phx(21, 12))
    state = run("emergency_quick", phx(21, 10), log, phx(21, 13))
    res = state.metrics["resolution"]
    assert res.calendar == "smartertools" and res.status == "breached"
    assert res.breach_at == phx(21, 10, 30) and res.business_elapsed_s == 2 * 3600
    cal = load_calendar("smartertools")
    assert res.when_spent(15 * M, cal) == res.clock_start == phx(21, 12)


def test_target_instant_freezes_once_passed() -> None:
    log = Log().add("pending", phx(23, 15)).add("open", phx(23, 16))
    res = run("full", phx(23, 8), log, phx(23, 16, 30)).metrics["resolution"]
    assert res.target_at == phx(23, 14)  # passed before the pause: stays
    assert res.breach_at == phx(24, 8)  # 8h + 1h paused: moved


# --- the log itself ----------------------------------------------------------------------------


def test_duplicate_event_ids_count_once_at_first_arrival() -> None:
    log = Log().add("agent_reply", phx(23, 9), event_id="r1")
    log.add("agent_reply", phx(23, 8, 15), event_id="r1")  # a resend with another time
    log.add("pending", phx(23, 10), event_id="p").add("pending", phx(23, 10), event_id="p")
    assert fr(run("standard", phx(23, 8), log, phx(23, 11))).stopped_at == phx(23, 9)
    assert [e.seq for e in replay_order(log.events)] == [1, 3]


def test_at_shows_the_historical_state() -> None:
    log = Log().add("agent_reply", phx(23, 11)).add("solved", phx(23, 15))
    before = run("full", phx(23, 8), log, phx(23, 10))
    assert fr(before).status == "active" and fr(before).business_elapsed_s == 7200.0
    assert before.metrics["resolution"].status == "active"
    between = run("full", phx(23, 8), log, phx(23, 12))
    assert fr(between).status == "achieved"
    assert between.metrics["resolution"].status == "active"
    assert run("full", phx(23, 8), log, phx(23, 16)).status == "solved"


def test_unused_event_types_are_ignored() -> None:
    log = (
        Log()
        .add("created", phx(23, 8))
        .add("rsaa_granted", phx(23, 9), granted_by="a")
        .add("verified_bug", phx(23, 9), remedy="refund")
    )
    assert run("standard", phx(23, 8), log, phx(23, 10)) == run(
        "standard", phx(23, 8), Log(), phx(23, 10)
    )


def test_events_before_creation_count_at_creation() -> None:
    log = Log().add("agent_reply", phx(23, 7))
    m = fr(run("standard", phx(23, 8), log, phx(23, 9)))
    assert m.status == "achieved" and m.stopped_at == phx(23, 8)


def test_at_before_creation_reports_the_untouched_clock() -> None:
    m = fr(run("standard", phx(23, 8), Log(), phx(23, 7)))
    assert m.status == "active" and m.business_elapsed_s == 0.0
    assert m.calendar_remaining_s == 5 * 3600


def test_unknown_initial_policy_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        run("platinum", phx(23, 8), Log(), phx(23, 9))
    assert err.value.field == "policy" and err.value.value == "platinum"


@pytest.mark.parametrize("naive", ["created_at", "at", "event"])
def test_naive_datetimes_are_refused(naive: str) -> None:
    aware, plain = phx(23, 8), datetime(2026, 11, 23, 8)
    log = Log().add("agent_reply", plain if naive == "event" else aware)
    with pytest.raises(TypeError, match=naive if naive != "event" else "occurred_at"):
        evaluate(
            "T",
            "standard",
            plain if naive == "created_at" else aware,
            log.events,
            POLICIES,
            plain if naive == "at" else aware,
            calendars=load_calendar,
        )


def test_when_spent_locates_escalation_thresholds() -> None:
    cal = load_calendar("smartertools")
    m = fr(run("standard", phx(20, 15), Log(), phx(20, 15)))
    assert m.when_spent(0.75 * m.breach, cal) == phx(23, 9)
    assert m.when_spent(m.breach, cal) == m.breach_at
    log = Log().add("pending", phx(23, 10)).add("open", phx(23, 12))
    res = run("full", phx(23, 8), log, phx(23, 13)).metrics["resolution"]
    assert res.when_spent(0.5 * res.breach, cal) == phx(23, 14)
    assert res.when_spent(res.breach, cal) == res.breach_at


# --- arrival order does not matter -------------------------------------------------------------

EVENT_TYPES = [
    "agent_reply",
    "customer_reply",
    "pending",
    "open",
    "solved",
    "reopened",
    "policy_changed",
    "not_an_emergency",
    "closed",
]


@st.composite
def shuffled_logs(draw: st.DrawFn) -> tuple[str, list[Event], list[Event]]:
    minutes = draw(st.lists(st.integers(0, 5 * 24 * 60), min_size=1, max_size=9, unique=True))
    events = []
    for i, minute in enumerate(minutes):
        kind = draw(st.sampled_from(EVENT_TYPES))
        data = {}
        if kind == "policy_changed":
            data = {"policy": draw(st.sampled_from(sorted(POLICIES)))}
        events.append(Event(f"e{i}", kind, phx(20, 6) + minute * M, 0, data))
    dup = draw(st.sampled_from(events))
    events.append(dup)  # the same event_id posted again
    order = draw(st.permutations(range(len(events))))
    arrived = [
        Event(e.event_id, e.type, e.occurred_at, order[i], e.data) for i, e in enumerate(events)
    ]
    natural = [Event(e.event_id, e.type, e.occurred_at, i, e.data) for i, e in enumerate(events)]
    return draw(st.sampled_from(sorted(POLICIES))), natural, arrived


@settings(max_examples=200, deadline=None)
@given(shuffled_logs(), st.integers(0, 7 * 24 * 60))
def test_any_arrival_order_gives_the_same_state(
    case: tuple[str, list[Event], list[Event]], at_minute: int
) -> None:
    name, natural, arrived = case
    at = phx(20, 6) + at_minute * M
    state = run(name, phx(20, 6), natural, at)
    assert run(name, phx(20, 6), arrived, at).to_json(details=True) == state.to_json(details=True)
    for m in state.metrics.values():
        assert m.business_remaining_s == pytest.approx(
            m.breach.total_seconds() - m.business_elapsed_s
        )
        assert m.running == (m.stopped_at is None)
        if m.status == "achieved":
            assert m.stopped_at is not None and m.stopped_at <= m.breach_at
        if m.status in ("active", "paused"):
            assert at <= m.breach_at
        if m.status == "breached":
            assert (m.stopped_at or at) > m.breach_at
