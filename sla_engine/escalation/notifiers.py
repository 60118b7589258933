"""Notification bodies, Standard Webhooks signing and the HTTP send.

Rendering and signing are pure; `HttpSender` is the only part that does I/O. A send never
raises: it returns an `Outcome` that the delivery step turns into sent / retry / dead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from sla_engine.errors import ConfigError

WHSEC_PREFIX = "whsec_"
USER_AGENT = "sla-engine-escalations/1"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a destination secret: `whsec_` + base64 (Standard Webhooks), or the
    raw text of any other secret."""
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret[len(WHSEC_PREFIX):]
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("secret: a whsec_ secret must be base64 after the prefix",
                              field="secret", value="whsec_...") from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def webhook_headers(secret: str | None, msg_id: str, timestamp: int, body: str
                    ) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return headers


def dedup_key(ticket_id: str, metric: str, cycle: int) -> str:
    """One PagerDuty incident per ticket metric cycle."""
    return f"sla-engine/{ticket_id}/{metric}/{cycle}"


def pagerduty_body(kind: str, event: dict[str, Any], routing_key: str | None,
                   key: str, severity: str) -> dict[str, Any]:
    """PagerDuty Events API v2 `trigger` or `resolve`."""
    if kind == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    summary = (f"SLA {event['metric']} of ticket {event['ticket_id']} reached "
               f"{event['threshold']} ({event['status']}, breach at {event['breach_at']})")
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary[:1024],
            "source": "sla-engine",
            "severity": severity,
            "timestamp": event["occurred_at"],
            "custom_details": event,
        },
    }


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Outcome:
    """What one attempt achieved: `sent`, `retry` (with an optional server-given delay),
    `dead` (a 4xx that will not change) or `gone` (410: disable the destination)."""

    result: str
    status: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None


def classify(status: int, headers: httpx.Headers | dict[str, str], now: datetime) -> Outcome:
    """Map an HTTP status to an outcome (2xx sent; 410 gone; 429/5xx retry; other dead)."""
    if 200 <= status < 300:
        return Outcome("sent", status)
    if status == 410:
        return Outcome("gone", status, "410 Gone: destination disabled")
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        return Outcome("retry", status, f"HTTP {status}", retry_after)
    return Outcome("dead", status, f"HTTP {status} (not retried)")


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def backoff(attempt: int, base: timedelta, cap: timedelta,
            rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: a uniform draw in [half, full] of base * 2^(n-1),
    capped, so retries of many deliveries spread out."""
    full = min(base * (2 ** max(attempt - 1, 0)), cap)
    return full * (0.5 + 0.5 * (rng or random).random())


class HttpSender:
    """Posts bodies with one pooled httpx client; thread-safe."""

    def __init__(self, timeout_s: float = 10.0, max_connections: int = 64) -> None:
        self.client = httpx.Client(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            follow_redirects=False,
        )

    def post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        now = datetime.now(UTC)
        try:
            response = self.client.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])
        return classify(response.status_code, response.headers, now)

    def close(self) -> None:
        self.client.close()
