"""Ticket and event requests, and the input checks they pass before anything is read or written.

Pure: no I/O. The checks raise :class:`InputError` naming the field, which the HTTP layer turns
into a 422 problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sla_engine.core.policies import Policy
from sla_engine.core.times import require_aware
from sla_engine.errors import InputError
from sla_engine.storage.models import ID_LENGTH

CLOCK_EVENT_TYPES = frozenset(
    {
        "created",
        "agent_reply",
        "customer_reply",
        "pending",
        "open",
        "solved",
        "closed",
        "reopened",
        "policy_changed",
        "calendar_changed",
    }
)
CREDIT_EVENT_TYPES = frozenset(
    {"verified_bug", "split", "not_an_emergency", "rsaa_granted", "rsaa_revoked"}
)
EVENT_TYPES = CLOCK_EVENT_TYPES | CREDIT_EVENT_TYPES
RESERVED_EVENT_KEYS = frozenset(
    {"event_id", "type", "occurred_at", "seq", "received_at", "ticket_id"}
)
MAX_EVENT_DATA_BYTES = 64 * 1024
NAME_MAX = 100

check_aware = require_aware
"""An instant: a datetime with a UTC offset, else an `InputError` naming the field (the one
check in `core.times`, under the name the tickets' callers know)."""


@dataclass(frozen=True)
class TicketCreate:
    """A request to open a ticket (`POST /v1/tickets`). ``calendar`` replaces the policy's
    calendars for the ticket's metrics (but those with ``fixed_calendar``)."""

    id: str
    policy: str
    created_at: datetime
    account: str | None = None
    product: str | None = None
    version: str | None = None
    calendar: str | None = None


@dataclass(frozen=True)
class EventCreate:
    """A request to append an event; `data` holds the event's extra fields."""

    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


def check_identifier(value: object, field_name: str, *, max_length: int = ID_LENGTH) -> str:
    """An id usable in a URL path: 1..max_length printable characters, no '/', no padding."""
    if not isinstance(value, str):
        raise InputError(f"{field_name} must be a string", field=field_name, value=value)
    if not 1 <= len(value) <= max_length:
        raise InputError(
            f"{field_name} must be 1 to {max_length} characters long", field=field_name, value=value
        )
    if value != value.strip() or "/" in value or not value.isprintable():
        raise InputError(
            f"{field_name} must be printable, without '/' or surrounding spaces",
            field=field_name,
            value=value,
        )
    return value


def check_optional_identifier(value: object, field_name: str, *, max_length: int) -> str | None:
    return None if value is None else check_identifier(value, field_name, max_length=max_length)


def check_policy(name: object, policies: Mapping[str, Policy], field_name: str = "policy") -> str:
    if not isinstance(name, str) or name not in policies:
        known = ", ".join(sorted(policies))
        raise InputError(
            f"{field_name} {name!r} is not a configured policy (known: {known})",
            field=field_name,
            value=name,
        )
    return name


def check_ticket_request(req: TicketCreate, policies: Mapping[str, Policy]) -> None:
    check_identifier(req.id, "id")
    check_policy(req.policy, policies)
    check_aware(req.created_at, "created_at")
    check_optional_identifier(req.account, "account", max_length=ID_LENGTH)
    check_optional_identifier(req.product, "product", max_length=NAME_MAX)
    check_optional_identifier(req.version, "version", max_length=NAME_MAX)
    check_optional_identifier(req.calendar, "calendar", max_length=NAME_MAX)


def check_event_request(req: EventCreate, policies: Mapping[str, Policy]) -> None:
    check_identifier(req.event_id, "event_id")
    if req.type not in EVENT_TYPES:
        raise InputError(
            f"type {req.type!r} is not an event type (one of: {', '.join(sorted(EVENT_TYPES))})",
            field="type",
            value=req.type,
        )
    check_aware(req.occurred_at, "occurred_at")
    check_event_data(req.data)
    if req.type == "policy_changed":
        check_policy(req.data.get("policy"), policies)
    if req.type == "calendar_changed":
        if "calendar" not in req.data:
            raise InputError(
                "calendar_changed needs 'calendar': a calendar name, or null for the "
                "policy's calendars",
                field="calendar",
                value=None,
            )
        check_optional_identifier(req.data["calendar"], "calendar", max_length=NAME_MAX)


def check_event_data(data: object) -> None:
    if not isinstance(data, Mapping):
        raise InputError("event fields must be a JSON object", field="data", value=data)
    if not data:  # most events carry no extra fields: nothing to encode
        return
    for key in data:
        if not isinstance(key, str):
            raise InputError("event field names must be strings", field="data", value=key)
        if key in RESERVED_EVENT_KEYS:
            raise InputError(f"{key} cannot be an extra event field", field=key, value=data[key])
    try:
        encoded = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"event fields must be plain JSON values ({exc})", field="data", value=repr(data)
        ) from None
    if len(encoded.encode()) > MAX_EVENT_DATA_BYTES:
        raise InputError(
            f"event fields exceed {MAX_EVENT_DATA_BYTES} bytes of JSON",
            field="data",
            value=f"{len(encoded)} bytes",
        )
