"""The outbox and delivery steps that need no database or network: the rows the outbox queues,
what an attempt sends, when a claimed delivery goes dead unsent, and how long a retry waits."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from sla_engine.config import Destination
from sla_engine.escalation.delivery import refusal, render, retry_delay
from sla_engine.escalation.outbox import Claimed, delivery_id, new_delivery
from sla_engine.escalation.settings import EscalationSettings

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = {
    "type": "sla.escalation",
    "ticket_id": "T-1",
    "metric": "first_response",
    "threshold": "100%",
    "status": "breached",
    "breach_at": T0.isoformat(),
    "business_remaining_s": -60.0,
    "policy": "standard",
    "occurred_at": T0.isoformat(),
}
WEBHOOK = Destination("oncall", "webhook", "http://hooks.example/sla", secret=SECRET)
PAGERDUTY = Destination("pd", "pagerduty", "http://pd.example/enqueue", routing_key="R0UT1NG")


def claimed(kind: str = "webhook", attempts: int = 1, destination: str = "oncall") -> Claimed:
    return Claimed(
        id=delivery_id("T-1", "first_response", 3, "100%", destination, kind),
        token="worker:abc",
        ticket_id="T-1",
        metric="first_response",
        cycle=3,
        threshold="100%",
        destination=destination,
        kind=kind,
        payload=json.dumps(EVENT, separators=(",", ":")),
        attempts=attempts,
        due_at=T0,
    )


def test_a_new_delivery_is_queued_under_its_derived_id() -> None:
    row = new_delivery(
        ticket_id="T-1",
        metric="first_response",
        cycle=3,
        threshold="resolve",
        destination="pd",
        kind="resolve",
        payload="{}",
        due_at=T0,
        not_before=T0 + timedelta(seconds=30),
        now=T0,
    )
    assert row.id == delivery_id("T-1", "first_response", 3, "resolve", "pd", "resolve")
    assert (row.status, row.attempts, row.lease_owner, row.lease_until) == ("queued", 0, None, None)
    assert row.not_before == T0 + timedelta(seconds=30)


def test_a_webhook_attempt_sends_the_payload_signed_under_the_delivery_id() -> None:
    item = claimed()
    body, headers = render(item, WEBHOOK)
    assert body == item.payload
    assert headers["webhook-id"] == item.id
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == EVENT


def test_a_webhook_without_a_secret_goes_unsigned() -> None:
    _, headers = render(claimed(), Destination("open", "webhook", "http://hooks.example/"))
    assert "webhook-signature" not in headers


def test_a_pagerduty_attempt_is_a_critical_trigger_keyed_by_ticket_metric_and_cycle() -> None:
    body, headers = render(claimed("trigger", destination="pd"), PAGERDUTY)
    sent = json.loads(body)
    assert sent["event_action"] == "trigger"
    assert sent["routing_key"] == "R0UT1NG"
    assert sent["dedup_key"] == "sla-engine/T-1/first_response/3"
    assert sent["payload"]["severity"] == "critical"
    assert sent["payload"]["custom_details"] == EVENT
    assert headers["webhook-id"] == claimed("trigger", destination="pd").id


def test_a_pagerduty_resolve_names_only_the_incident() -> None:
    item = claimed("resolve", destination="pd")
    body, _ = render(item, PAGERDUTY)
    assert json.loads(body) == {
        "routing_key": "R0UT1NG",
        "event_action": "resolve",
        "dedup_key": "sla-engine/T-1/first_response/3",
    }


@pytest.mark.parametrize(
    ("destination", "disabled", "attempts", "why"),
    [
        (None, set(), 1, "unknown destination 'oncall'"),
        (WEBHOOK, {"oncall"}, 1, "destination 'oncall' is disabled (it answered 410 Gone)"),
        (WEBHOOK, set(), 9, "gave up after 8 attempts"),
    ],
)
def test_a_claimed_delivery_goes_dead_unsent_when_it_cannot_be_sent(
    destination: Destination | None, disabled: set[str], attempts: int, why: str
) -> None:
    outcome = refusal(claimed(attempts=attempts), destination, disabled, max_attempts=8)
    assert outcome is not None
    assert (outcome.result, outcome.error) == ("dead", why)


def test_a_sendable_delivery_is_not_refused() -> None:
    assert refusal(claimed(attempts=8), WEBHOOK, {"other"}, max_attempts=8) is None


def test_a_retry_waits_for_the_backoff_or_the_servers_retry_after_whichever_is_longer() -> None:
    settings = EscalationSettings(backoff_base_s=2, backoff_cap_s=60, retry_after_cap_s=120)
    rng = random.Random(3)
    plain = retry_delay(3, None, settings, rng)
    assert timedelta(seconds=4) <= plain <= timedelta(seconds=8)
    asked = retry_delay(3, timedelta(seconds=90), settings, rng)
    assert asked == timedelta(seconds=90)
    capped = retry_delay(3, timedelta(hours=5), settings, rng)
    assert capped == timedelta(seconds=120)
    short = retry_delay(10, timedelta(seconds=1), settings, rng)
    assert timedelta(seconds=30) <= short <= timedelta(seconds=60)
