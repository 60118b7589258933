"""Tickets, their events and their SLA state.

`POST /v1/tickets` answers 201 when it created the ticket and 200 when the same ticket was
already there (idempotent retries); a different ticket under a used id is a 409.
`POST /v1/tickets/{id}/events` answers 201 for a new event and 200 for a repeated `event_id`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from sla_engine.api.bodies import body_schema, read_model
from sla_engine.api.deps import ServicesDep, services_of
from sla_engine.api.openapi import problem_responses
from sla_engine.api.schemas import EventRequest, Instant, TicketRequest
from sla_engine.api.service_calls import call
from sla_engine.tickets import EventCreate

router = APIRouter(tags=["tickets"])
MAX_EVENT_BODY_BYTES = 256 * 1024
_TICKET_ID_PARAMETER = {
    "in": "path",
    "name": "ticket_id",
    "required": True,
    "schema": {"title": "Ticket Id", "type": "string"},
}


# The hot route is declared first: FastAPI tries a router's routes in order, twice per
# request (the router's match, then its own); declared after the create and read routes, an
# event was matched on the 9th try instead of the 5th, about 70 Python calls.
@router.post(
    "/tickets/{ticket_id}/events",
    status_code=201,
    responses={
        200: {"description": "event_id already stored: nothing changed"},
        **problem_responses(402, 409),
    },
    openapi_extra={
        **body_schema(EventRequest, limit=MAX_EVENT_BODY_BYTES),
        "parameters": [_TICKET_ID_PARAMETER],
    },
)
async def add_event(request: Request) -> Response:
    """Append an event (`agent_reply`, `customer_reply`, `pending`, `solved`, ...).

    Extra fields are the event's data, e.g. `{"type": "policy_changed", "policy": "emergency"}`
    or `{"type": "calendar_changed", "calendar": "example-sydney"}` (the ticket moves to
    another team's hours from `occurred_at` on; null gives the policy's calendars back).
    """
    # The hot write route declares no parameters (the path's is documented by hand and read
    # from the matched path) and no dependencies: FastAPI's solving of them cost more than
    # reading them here. The answer is encoded by orjson (JSONResponse's json.dumps cost
    # about 3 times as much).
    body = await read_model(request, EventRequest)
    answer = await call(
        request,
        services_of(request).tickets.add_event,
        request.path_params["ticket_id"],
        EventCreate(
            event_id=body.event_id,
            type=body.type,
            occurred_at=body.occurred_at,
            data=body.data(),
        ),
    )
    status = 200 if answer.get("duplicate") else 201
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json")


@router.post(
    "/tickets",
    status_code=201,
    responses={200: {"description": "already existed"}, **problem_responses(402, 409)},
)
async def create_ticket(
    body: TicketRequest, request: Request, services: ServicesDep
) -> JSONResponse:
    """Open a ticket; its SLA clocks start at `created_at`.

    `calendar` (optional) gives the ticket its own calendar: it replaces the calendar of each
    metric whose policy does not set `fixed_calendar` (an unknown one is a 422).
    """
    from sla_engine.tickets import TicketCreate

    version = None if body.version is None else str(body.version)
    answer = await call(
        request,
        services.tickets.create_ticket,
        TicketCreate(
            id=body.id,
            policy=body.policy,
            created_at=body.created_at,
            account=body.account,
            product=body.product,
            version=version,
            calendar=body.calendar,
        ),
    )
    created = bool(answer.pop("created", True))
    return JSONResponse(answer, status_code=201 if created else 200)


@router.get("/tickets/{ticket_id}")
async def get_ticket(ticket_id: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """The ticket, its events in replay order and its SLA state now; `calendar` is the
    ticket's calendar in force (null when the policy's calendars apply)."""
    return dict(await call(request, services.tickets.get_ticket, ticket_id))


@router.get("/tickets/{ticket_id}/sla")
async def ticket_sla(
    ticket_id: str,
    request: Request,
    services: ServicesDep,
    at: Annotated[
        Instant | None, Query(description="evaluate at this instant (ISO 8601); default: now")
    ] = None,
) -> dict[str, Any]:
    """The ticket's SLA state, replayed from its whole event log."""
    state = await call(request, services.tickets.sla, ticket_id, at)
    return dict(state.to_json())
