"""Request bodies of the HTTP API's calendar arithmetic (pydantic lives only at the edges).

The field types and the bodies the import format shares (tickets, events, credits) are in
`sla_engine/edge/requests.py`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sla_engine.edge.requests import Duration, Instant, Name, Strict
from sla_engine.edge.requests import EventRequest as EventRequest
from sla_engine.edge.requests import Identifier as Identifier
from sla_engine.edge.requests import TicketRequest as TicketRequest

MAX_BATCH_ITEMS = 100_000


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
