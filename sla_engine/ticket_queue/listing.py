"""What a queue page asks for (`GET /v1/tickets`), checked, and its opaque cursor (pure).

A page is ordered by a key and the ticket id, which together are unique: `breach_at` orders by
the ticket's `next_breach_at` (or by the `metric=` metric's `breach_at`), ascending, tickets
with nothing running last; `-created_at` by creation, newest first. The cursor carries the
last row's (key, id) and the order it was made for, so following it lists every match exactly
once, even while tickets are added (a new one falls before or after the cursor, never both).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from datetime import datetime

from sla_engine.core.policies import METRICS
from sla_engine.core.times import is_aware
from sla_engine.errors import InputError

TICKET_STATUSES = ("open", "pending", "solved", "closed")
DEFAULT_STATUSES = ("open", "pending")
BREACH_ORDER = "breach_at"
CREATED_ORDER = "-created_at"
ORDERS = (BREACH_ORDER, CREATED_ORDER)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_CURSOR_VERSION = 1
_MAX_CURSOR_CHARS = 1000


@dataclass(frozen=True)
class After:
    """The position a cursor points after: the last listed row's key and ticket id."""

    order: str
    metric: str | None
    key: datetime
    ticket_id: str


@dataclass(frozen=True)
class Listing:
    """A checked queue request; `after` is None on the first page."""

    statuses: tuple[str, ...] = DEFAULT_STATUSES
    policy: str | None = None
    calendar: str | None = None
    metric: str | None = None
    breached: bool | None = None
    breach_before: datetime | None = None
    order: str = BREACH_ORDER
    limit: int = DEFAULT_LIMIT
    after: After | None = None

    @property
    def descending(self) -> bool:
        return self.order == CREATED_ORDER

    def cursor_after(self, key: datetime, ticket_id: str) -> str:
        return encode_cursor(After(self.order, self.metric, key, ticket_id))


def parse_statuses(text: str | None) -> tuple[str, ...]:
    """`open,pending` -> ("open", "pending"); `all` -> every status; None -> the default."""
    if text is None:
        return DEFAULT_STATUSES
    if text.strip() == "all":
        return TICKET_STATUSES
    wanted = [part.strip() for part in text.split(",")]
    unknown = [part for part in wanted if part not in TICKET_STATUSES]
    if unknown or not wanted:
        raise InputError(
            f"status {unknown[0] if unknown else text!r} is not a ticket status (a comma-"
            f"separated list of {', '.join(TICKET_STATUSES)}, or all)",
            field="status",
            value=text,
        )
    return tuple(s for s in TICKET_STATUSES if s in wanted)


def make_listing(
    *,
    status: str | None = None,
    policy: str | None = None,
    calendar: str | None = None,
    metric: str | None = None,
    breached: bool | None = None,
    breach_before: datetime | None = None,
    order: str = BREACH_ORDER,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Listing:
    """A `Listing` from the query parameters; a bad one is an `InputError` naming it."""
    if order not in ORDERS:
        raise InputError(
            f"order {order!r} must be one of {', '.join(ORDERS)}", field="order", value=order
        )
    if metric is not None and metric not in METRICS:
        raise InputError(
            f"metric {metric!r} must be one of {', '.join(METRICS)}", field="metric", value=metric
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be 1 to {MAX_LIMIT}", field="limit", value=limit)
    listing = Listing(
        statuses=parse_statuses(status),
        policy=policy,
        calendar=calendar,
        metric=metric,
        breached=breached,
        breach_before=breach_before,
        order=order,
        limit=limit,
    )
    if cursor is None:
        return listing
    after = decode_cursor(cursor)
    if (after.order, after.metric) != (order, metric):
        raise InputError(
            f"cursor was made for order={after.order}"
            f"{'' if after.metric is None else f' and metric={after.metric}'}; "
            "follow it with the same order and metric",
            field="cursor",
            value=cursor,
        )
    return replace(listing, after=after)


def encode_cursor(after: After) -> str:
    doc = [_CURSOR_VERSION, after.order, after.metric, after.key.isoformat(), after.ticket_id]
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> After:
    """The position `text` (a `next_cursor`) points after; anything else is an InputError."""
    try:
        if len(text) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, order, metric, key, ticket_id = json.loads(raw)
        after = After(order, metric, datetime.fromisoformat(key), ticket_id)
        _check_position(version, after)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(
            f"cursor is not a next_cursor of this listing ({_reason(exc)})",
            field="cursor",
            value=text,
        ) from None
    return after


def _check_position(version: object, after: After) -> None:
    if version != _CURSOR_VERSION:
        raise ValueError("unknown version")
    if after.order not in ORDERS or (after.metric is not None and after.metric not in METRICS):
        raise ValueError("unknown order or metric")
    if not is_aware(after.key):
        raise ValueError("naive key")
    if not isinstance(after.ticket_id, str):
        raise ValueError("bad ticket id")


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ValueError) and str(exc) else type(exc).__name__
