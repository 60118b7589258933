"""Pure parts of escalations: planning choices, backoff, HTTP outcome mapping, signing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import standardwebhooks

from sla_engine.errors import ConfigError
from sla_engine.escalation.notifiers import (
    backoff,
    classify,
    dedup_key,
    parse_retry_after,
    secret_key,
    sign,
    webhook_headers,
)
from sla_engine.escalation.outbox import delivery_id
from sla_engine.escalation.planning import (
    DueTimer,
    choose_firing,
    hold_until,
    next_repeat_after,
    severity,
)
from sla_engine.escalation.settings import EscalationSettings

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_only_the_latest_due_threshold_of_each_cycle_fires() -> None:
    a = ("T-1", "first_response", 1)
    b = ("T-2", "first_response", 1)
    due = [
        DueTimer(1, a, T0),
        DueTimer(2, a, T0 + timedelta(hours=1)),
        DueTimer(3, b, T0),
        DueTimer(4, ("T-1", "first_response", 2), T0),
    ]
    fire, skip = choose_firing(due)
    assert sorted(t.id for t in fire) == [2, 3, 4]
    assert [t.id for t in skip] == [1]


@pytest.mark.parametrize(
    ("fired", "now", "expected"),
    [
        (1, T0 + timedelta(hours=1, minutes=1), 2),  # on time: the next one
        (1, T0 + timedelta(hours=5, minutes=30), 6),  # late: resume from now, no burst
        (3, T0 + timedelta(hours=4), 5),  # exactly on a repeat instant: the next
    ],
)
def test_next_repeat_resumes_from_now(fired: int, now: datetime, expected: int) -> None:
    assert next_repeat_after(T0, timedelta(hours=1), fired, now) == expected
    assert T0 + timedelta(hours=expected) > now


def test_hold_until_without_a_calendar_is_now() -> None:
    assert hold_until(T0, None) == T0


def test_severity_is_critical_from_the_breach_on() -> None:
    assert [severity(t) for t in ("50%", "-15m", "100%", "repeat:3")] == [
        "warning",
        "warning",
        "critical",
        "critical",
    ]


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    base, cap = timedelta(seconds=2), timedelta(seconds=60)
    for attempt, full in ((1, 2), (2, 4), (3, 8), (4, 16), (10, 60)):
        delays = [backoff(attempt, base, cap, rng).total_seconds() for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, "sent"),
        (202, "sent"),
        (410, "gone"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (400, "dead"),
        (401, "dead"),
        (404, "dead"),
        (422, "dead"),
    ],
)
def test_http_status_mapping(status: int, result: str) -> None:
    assert classify(status, httpx.Headers(), T0).result == result


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120", T0) == timedelta(seconds=120)
    assert parse_retry_after("Mon, 23 Nov 2026 15:00:30 GMT", T0) == timedelta(seconds=30)
    assert parse_retry_after("soon", T0) is None
    assert classify(429, httpx.Headers({"retry-after": "7"}), T0).retry_after == timedelta(
        seconds=7
    )


@pytest.mark.parametrize("secret", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "raw secret"])
def test_signature_verifies_with_standardwebhooks(secret: str) -> None:
    body = '{"type":"sla.escalation","ticket_id":"T-1"}'
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_headers(secret, "msg_1", now, body)
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    assert standardwebhooks.Webhook(key).verify(body, headers) == {
        "type": "sla.escalation",
        "ticket_id": "T-1",
    }
    assert headers["webhook-signature"] == sign(secret, "msg_1", now, body)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(key).verify(body.replace("T-1", "T-2"), headers)


def test_a_whsec_secret_must_be_base64() -> None:
    with pytest.raises(ConfigError):
        secret_key("whsec_not base64!")


def test_ids_are_stable_per_escalation_and_destination() -> None:
    one = delivery_id("T-1", "first_response", 1, "75%", "oncall", "webhook")
    assert one == delivery_id("T-1", "first_response", 1, "75%", "oncall", "webhook")
    assert one.startswith("msg_")
    assert one != delivery_id("T-1", "first_response", 2, "75%", "oncall", "webhook")
    assert one != delivery_id("T-1", "first_response", 1, "75%", "pd", "webhook")
    assert dedup_key("T-1", "first_response", 2) == "sla-engine/T-1/first_response/2"


def test_settings_from_the_environment() -> None:
    settings = EscalationSettings.from_env(
        {"SLA_ENGINE_ESCALATION_LEASE_S": "2.5", "SLA_ENGINE_ESCALATION_MAX_ATTEMPTS": "4"}
    )
    assert (settings.lease_s, settings.max_attempts) == (2.5, 4)
    with pytest.raises(ConfigError, match="SLA_ENGINE_ESCALATION_POLL_S"):
        EscalationSettings.from_env({"SLA_ENGINE_ESCALATION_POLL_S": "fast"})
    with pytest.raises(ConfigError):
        EscalationSettings.from_env({"SLA_ENGINE_ESCALATION_MAX_ATTEMPTS": "0"})


def test_a_claim_never_holds_more_than_the_senders_finish_within_half_a_lease() -> None:
    assert EscalationSettings(concurrency=8, lease_s=30, send_timeout_s=10).claim_limit == 8
    assert (
        EscalationSettings(concurrency=4, lease_s=30, send_timeout_s=1, claim_batch=500).claim_limit
        == 60
    )
    assert (
        EscalationSettings(concurrency=4, lease_s=60, send_timeout_s=1, claim_batch=50).claim_limit
        == 50
    )


def test_without_rules_the_timer_hook_stays_out_of_ticket_writes() -> None:
    from sla_engine.core.policies import default_policies
    from sla_engine.escalation.timers import EscalationTimerHook

    hook = EscalationTimerHook(default_policies(), {})
    assert not hook.enabled
    hook.on_state(None, None, None, T0)  # type: ignore[arg-type]  # returns before any I/O
