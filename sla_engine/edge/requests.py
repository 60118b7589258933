"""The request models both doors check input with: the HTTP API's bodies and the import
format's lines (a line is checked like the HTTP body it stands for).

Times are ISO 8601 strings with a UTC offset, in [1900, 3000) UTC; a naive time or a number
is refused naming the field. Durations are policy-syntax strings ("4h", "90m", "1h30m",
"45s") or a number of seconds. Unknown fields are refused (a typo must not be silently
ignored), except on ticket events, whose extra fields are the event's data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from sla_engine.credits.ledger import GRANT_KINDS
from sla_engine.json_types import JsonObject

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
"""Instants the API accepts: [1900, 3000) UTC; beyond, it is a typo, not a ticket."""
RANGE_MESSAGE = "is out of the supported range (years 1900 to 2999)"
ID_MAX = 200
NAME_MAX = 100


def in_supported_range(value: datetime) -> bool:
    return EARLIEST <= value < LATEST


def _text_only(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset")
    return value


def _supported(value: datetime) -> datetime:
    if not in_supported_range(value):
        raise ValueError(RANGE_MESSAGE)
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_supported)]


def _duration_input(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('must be a duration such as "4h", "1h30m", or a number of seconds')
    return value


def _version_input(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a version string such as '12.1' or a major version number")
    return str(value)


Duration = Annotated[
    str | float,
    BeforeValidator(_duration_input),
    Field(
        description='Business time: "4h", "90m", "1h30m", "45s", or a number of seconds >= 0',
        examples=["4h"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Version = Annotated[
    str,
    BeforeValidator(_version_input),
    Field(description="product version, e.g. 12 or '12.1'"),
]
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketRequest(Strict):
    id: Identifier
    policy: Name
    created_at: Instant
    account: Identifier | None = None
    product: Name | None = None
    version: Version | None = None
    calendar: Name | None = None


class EventRequest(BaseModel):
    """A ticket event; fields beyond these three are the event's data (e.g. `policy`)."""

    model_config = ConfigDict(extra="allow")

    event_id: Identifier
    type: Name
    occurred_at: Instant

    def data(self) -> JsonObject:
        return dict(self.model_extra or {})


GrantKind = Literal[
    "license_purchase", "renewal", "reinstatement", "bundle_purchase", "ticket_purchase"
]
assert set(GrantKind.__args__) == set(GRANT_KINDS)  # type: ignore[attr-defined]


class GrantRequest(Strict):
    """A grant or purchase: licence (2 email credits), renewal or reinstatement (1), bundle
    (2), or `ticket_purchase` of `quantity` tickets (default 1) at `price_per_ticket`."""

    kind: GrantKind
    occurred_at: Instant
    quantity: Annotated[int, Field(ge=1, le=10_000, strict=True)] | None = None
    price_per_ticket: Annotated[Decimal, Field(ge=0, le=1_000_000, allow_inf_nan=False)] | None = (
        None
    )
    package: Name | None = Field(default=None, description="package name, e.g. '10-pack'")


class SubscriptionRequest(Strict):
    """A hosted-service subscription: unlimited email tickets from `start` until `end`
    (open-ended without it). Posting `end` for an open subscription with the same `start`
    ends it."""

    kind: Literal["hosted"]
    start: Instant
    end: Instant | None = None
