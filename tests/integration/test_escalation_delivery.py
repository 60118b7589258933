"""Firing and delivery against a real database and a real HTTP receiver on 127.0.0.1.

The clock is injected: each test calls `tick(now)` itself, so nothing waits on wall time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import Destination
from sla_engine.core.policies import default_policies
from sla_engine.escalation import EscalationLog, EscalationSettings
from sla_engine.escalation.models import DestinationState, EscalationDelivery, EscalationTimer
from sla_engine.escalation.scheduler import EscalationEngine

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
FAST = EscalationSettings(
    poll_s=0.05,
    lease_s=5,
    max_attempts=3,
    backoff_base_s=1,
    backoff_cap_s=4,
    send_timeout_s=5,
    concurrency=4,
)


def destinations(base: str, **paths: str) -> dict[str, Destination]:
    found: dict[str, Destination] = {
        "oncall": Destination(
            "oncall", "webhook", f"{base}{paths.get('oncall', '/hook')}", secret=SECRET
        ),
        "pd": Destination("pd", "pagerduty", f"{base}/pd", routing_key="R0UT1NG"),
    }
    return found


def engine_for(
    sessions: sessionmaker[Session],
    base: str,
    now: list[datetime],
    settings: EscalationSettings = FAST,
    **paths: str,
) -> EscalationEngine:
    return EscalationEngine(
        sessions,
        destinations=destinations(base, **paths),
        policies=default_policies(),
        settings=settings,
        clock=lambda: now[0],
        worker="test",
    )


def seed_timer(
    sessions: sessionmaker[Session],
    *,
    ticket: str = "T-1",
    threshold: str = "100%",
    due_at: datetime = T0,
    breach_at: datetime = T0,
    cycle: int = 1,
    targets: list[dict[str, Any]] | None = None,
) -> None:
    with sessions.begin() as s:
        s.add(
            EscalationTimer(
                ticket_id=ticket,
                metric="first_response",
                cycle=cycle,
                threshold=threshold,
                due_at=due_at,
                status="pending",
                generation=1,
                policy="standard",
                calendar="24x7",
                breach_at=breach_at,
                targets=json.dumps(targets or [{"to": "oncall"}]),
                created_at=T0 - timedelta(hours=4),
                updated_at=T0 - timedelta(hours=4),
            )
        )


def deliveries(sessions: sessionmaker[Session]) -> list[EscalationDelivery]:
    with sessions.begin() as s:
        return list(s.query(EscalationDelivery).order_by(EscalationDelivery.id))


def test_a_due_timer_fires_once_and_is_delivered_signed(sessions, receiver) -> None:
    rec, base = receiver
    now = [T0 - timedelta(seconds=1)]
    engine = engine_for(sessions, base, now)
    seed_timer(sessions)
    assert engine.tick(now[0]).fire.fired == 0
    now[0] = T0
    report = engine.tick(now[0])
    assert (report.fire.fired, report.deliver.sent) == (1, 1)
    assert engine.tick(now[0] + timedelta(seconds=1)).fire.fired == 0
    [hit] = rec.received
    body = standardwebhooks.Webhook(SECRET).verify(hit.body, hit.headers)
    assert body == {
        "type": "sla.escalation",
        "ticket_id": "T-1",
        "metric": "first_response",
        "threshold": "100%",
        "status": "active",
        "breach_at": T0.isoformat(),
        "business_remaining_s": 0.0,
        "policy": "standard",
        "occurred_at": T0.isoformat(),
    }
    [row] = deliveries(sessions)
    assert (row.status, row.attempts, row.id) == ("sent", 1, hit.headers["webhook-id"])
    engine.stop()


def test_raw_secret_signs_with_its_bytes(sessions, receiver) -> None:
    rec, base = receiver
    now = [T0]
    engine = engine_for(sessions, base, now)
    engine.deliverer.destinations = {
        "oncall": Destination("oncall", "webhook", f"{base}/hook", secret="plain-text-secret")
    }
    seed_timer(sessions)
    engine.tick(now[0])
    [hit] = rec.received
    standardwebhooks.Webhook(b"plain-text-secret").verify(hit.body, hit.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(hit.body, hit.headers)
    engine.stop()


def test_after_downtime_only_the_highest_overdue_threshold_fires(sessions, receiver) -> None:
    rec, base = receiver
    for threshold, due in (
        ("50%", T0 - timedelta(hours=2)),
        ("75%", T0 - timedelta(hours=1)),
        ("100%", T0),
    ):
        seed_timer(sessions, threshold=threshold, due_at=due)
    now = [T0 + timedelta(hours=3)]
    engine = engine_for(sessions, base, now)
    report = engine.tick(now[0])
    assert (report.fire.fired, report.fire.skipped, report.deliver.sent) == (1, 2, 1)
    assert [r.json["threshold"] for r in rec.received] == ["100%"]
    assert rec.received[0].json["status"] == "breached"
    assert rec.received[0].json["business_remaining_s"] == -3 * 3600
    with sessions.begin() as s:
        states = {t.threshold: t.status for t in s.query(EscalationTimer)}
    assert states == {"50%": "skipped", "75%": "skipped", "100%": "fired"}
    engine.stop()


def test_repeats_resume_from_now_without_a_burst(sessions, receiver) -> None:
    rec, base = receiver
    policies = default_policies()
    from dataclasses import replace

    from sla_engine.core.policies import RepeatRule

    fr = replace(
        policies["standard"].metrics["first_response"],
        repeat_after_breach=RepeatRule(timedelta(hours=1), "oncall"),
    )
    policies["standard"] = replace(policies["standard"], metrics={"first_response": fr})
    seed_timer(sessions, threshold="repeat:1", due_at=T0 + timedelta(hours=1))
    now = [T0 + timedelta(hours=5, minutes=30)]
    engine = EscalationEngine(
        sessions,
        destinations=destinations(base),
        policies=policies,
        settings=FAST,
        clock=lambda: now[0],
        worker="test",
    )
    assert engine.tick(now[0]).deliver.sent == 1
    assert engine.tick(now[0]).deliver.sent == 0
    with sessions.begin() as s:
        pending = [
            (t.threshold, t.due_at) for t in s.query(EscalationTimer).filter_by(status="pending")
        ]
    assert pending == [("repeat:6", T0 + timedelta(hours=6))]
    now[0] = T0 + timedelta(hours=6)
    assert engine.tick(now[0]).deliver.sent == 1
    assert [r.json["threshold"] for r in rec.received] == ["repeat:1", "repeat:6"]
    engine.stop()


def test_retries_with_backoff_then_dead_letter_then_replay(sessions, receiver) -> None:
    rec, base = receiver
    rec.script["/hook"] = [503, (429, {"retry-after": "3"}), 500]
    now = [T0]
    engine = engine_for(sessions, base, now)
    seed_timer(sessions)
    engine.tick(now[0])
    [row] = deliveries(sessions)
    assert (row.status, row.attempts, row.last_status) == ("queued", 1, 503)
    first_delay = row.not_before - T0
    assert timedelta(seconds=0.5) <= first_delay <= timedelta(seconds=1)
    assert engine.tick(now[0]).deliver.claimed == 0
    now[0] = row.not_before
    engine.tick(now[0])
    [row] = deliveries(sessions)
    assert (row.status, row.attempts, row.last_status) == ("queued", 2, 429)
    assert row.not_before - now[0] >= timedelta(seconds=3)
    now[0] = row.not_before
    engine.tick(now[0])
    [row] = deliveries(sessions)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "gave up after 3 attempts" in (row.last_error or "")
    ids = {r.headers["webhook-id"] for r in rec.received}
    assert ids == {row.id} and len(rec.received) == 3
    log = EscalationLog(sessions, lambda: now[0])
    assert [d["id"] for d in log.list(status="dead")] == [row.id]
    log.replay(row.id)
    engine.tick(now[0])
    assert [d["status"] for d in log.list(ticket="T-1")] == ["sent"]
    assert rec.received[-1].headers["webhook-id"] == row.id
    engine.stop()


def test_other_4xx_is_not_retried_and_410_disables_the_destination(sessions, receiver) -> None:
    rec, base = receiver
    rec.script["/hook"] = [400]
    rec.script["/gone"] = [410]
    now = [T0]
    engine = engine_for(sessions, base, now)
    engine.deliverer.destinations = {
        **destinations(base),
        "gone": Destination("gone", "webhook", f"{base}/gone", secret=SECRET),
    }
    seed_timer(sessions, ticket="T-1")
    seed_timer(sessions, ticket="T-2", targets=[{"to": "gone"}])
    seed_timer(sessions, ticket="T-3", targets=[{"to": "gone"}], due_at=T0 + timedelta(1))
    engine.tick(now[0])
    rows = {r.ticket_id: r for r in deliveries(sessions)}
    assert (rows["T-1"].status, rows["T-1"].attempts, rows["T-1"].last_status) == ("dead", 1, 400)
    assert (rows["T-2"].status, rows["T-2"].last_status) == ("dead", 410)
    with sessions.begin() as s:
        assert s.get(DestinationState, "gone") is not None
    hits = len(rec.received)
    now[0] = T0 + timedelta(days=1)
    engine.tick(now[0])
    rows = {r.ticket_id: r for r in deliveries(sessions)}
    assert rows["T-3"].status == "dead" and "disabled" in (rows["T-3"].last_error or "")
    assert len(rec.received) == hits
    engine.stop()


def test_pagerduty_trigger_has_a_dedup_key_per_ticket_metric_cycle(sessions, receiver) -> None:
    rec, base = receiver
    now = [T0]
    engine = engine_for(sessions, base, now)
    seed_timer(
        sessions,
        threshold="75%",
        due_at=T0 - timedelta(minutes=1),
        cycle=2,
        targets=[{"to": "pd"}, {"to": "oncall"}],
    )
    engine.tick(T0 - timedelta(minutes=1))
    by_path = {r.path: r for r in rec.received}
    trigger = by_path["/pd"].json
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == "R0UT1NG"
    assert trigger["dedup_key"] == "sla-engine/T-1/first_response/2"
    assert trigger["payload"]["severity"] == "warning"
    assert trigger["payload"]["source"] == "sla-engine"
    assert "T-1" in trigger["payload"]["summary"]
    assert by_path["/hook"].json["threshold"] == "75%"
    engine.stop()


def test_a_moved_timer_fires_at_its_new_time_only(sessions, receiver) -> None:
    rec, base = receiver
    now = [T0]
    engine = engine_for(sessions, base, now)
    seed_timer(sessions)
    with sessions.begin() as s:
        timer = s.query(EscalationTimer).one()
        timer.generation += 1
        timer.due_at = T0 + timedelta(hours=1)
    assert engine.tick(T0).fire.fired == 0
    assert engine.tick(T0 + timedelta(hours=1)).fire.fired == 1
    assert rec.received[0].json["occurred_at"] == (T0 + timedelta(hours=1)).isoformat()
    engine.stop()


def test_during_holds_a_notification_until_the_calendar_opens(sessions, receiver) -> None:
    rec, base = receiver
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    seed_timer(
        sessions,
        due_at=saturday,
        breach_at=saturday,
        targets=[{"to": "oncall", "during": "smartertools"}],
    )
    now = [saturday]
    engine = engine_for(sessions, base, now)
    report = engine.tick(now[0])
    assert (report.fire.fired, report.deliver.sent) == (1, 0)
    [row] = deliveries(sessions)
    from sla_engine.core.calendar import load_calendar

    assert row.not_before == load_calendar("smartertools").next_open(saturday)
    assert row.not_before > saturday
    now[0] = row.not_before
    assert engine.tick(now[0]).deliver.sent == 1
    assert len(rec.received) == 1
    engine.stop()
