"""Request bodies of the HTTP API (pydantic lives only at this edge).

Times are ISO 8601 strings with a UTC offset; a naive time or a number is refused naming the
field. Durations are policy-syntax strings ("4h", "90m", "1h30m", "45s") or a number of
seconds. Unknown fields are refused (a typo must not be silently ignored), except on ticket
events, whose extra fields are the event's data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from sla_engine.api.iso_times import RANGE_MESSAGE, in_supported_range

MAX_BATCH_ITEMS = 100_000
ID_MAX = 200
NAME_MAX = 100


def _text_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset")
    return value


def _supported(value: datetime) -> datetime:
    if not in_supported_range(value):
        raise ValueError(RANGE_MESSAGE)
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_supported)]


def _duration_input(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('must be a duration such as "4h", "1h30m", or a number of seconds')
    return value


def _version_input(value: Any) -> Any:
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


class DeadlineRequest(Strict):
    """Either `{calendar, start, duration}` or `{policy, metric, start}`."""

    start: Instant
    calendar: Name | None = None
    duration: Duration | None = None
    policy: Name | None = None
    metric: Name | None = Field(default=None, description="default: first_response")


class BatchItem(Strict):
    start: Annotated[str, Field(examples=["2026-11-20T13:00:00-07:00"])]
    duration: Duration


class BatchRequest(Strict):
    """Many deadlines on one calendar (at most 100,000 items a request)."""

    calendar: Name
    items: Annotated[list[BatchItem], Field(max_length=MAX_BATCH_ITEMS)]


class ElapsedRequest(Strict):
    """Business time between two instants on one calendar."""

    calendar: Name
    from_: Instant = Field(alias="from")
    to: Instant


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

    def data(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
