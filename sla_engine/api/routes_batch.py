"""`POST /v1/batch`: tickets, then events, each answered as its single call would be.

The answer is 200 with one result per item, in order: `status` is what `POST /v1/tickets` or
`POST /v1/tickets/{id}/events` would have answered (201 created, 200 already there, 4xx with
its problem+json body in `problem`). An item that fails writes nothing; the others go on.
At most 10,000 items (tickets and events together) and 16 MiB a request: a 413 above, read
no further than the limit.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sla_engine.api.bodies import body_schema, read_body
from sla_engine.api.deps import ServicesDep
from sla_engine.api.openapi import problem_responses
from sla_engine.api.problems import FieldError, Problem, ProblemError
from sla_engine.api.schemas import EventRequest, Identifier, Strict, TicketRequest
from sla_engine.ingest.batch import BatchRunner

router = APIRouter(tags=["tickets"])
MAX_ITEMS = 10_000
MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024


class BatchEvent(EventRequest):
    """An event of `POST /v1/tickets/{ticket_id}/events`, with its `ticket_id`."""

    ticket_id: Identifier


class BatchRequest(Strict):
    """Tickets (bodies of `POST /v1/tickets`) and events; at most 10,000 items together. An
    item that does not fit its schema is answered with its own 422 problem."""

    tickets: Annotated[list[TicketRequest], Field(default_factory=list, max_length=MAX_ITEMS)]
    events: Annotated[list[BatchEvent], Field(default_factory=list, max_length=MAX_ITEMS)]


class TicketResult(BaseModel):
    id: str | None = Field(description="the item's id (null when it had none)")
    status: int = Field(description="201 created, 200 already there, else the error status")
    problem: dict[str, Any] | None = Field(
        default=None, description="the problem+json body of a 4xx (absent otherwise)"
    )


class EventResult(BaseModel):
    ticket_id: str | None
    event_id: str | None
    status: int = Field(description="201 stored, 200 event_id already stored, else the error")
    problem: dict[str, Any] | None = Field(
        default=None, description="the problem+json body of a 4xx (absent otherwise)"
    )


class BatchResponse(BaseModel):
    tickets: list[TicketResult]
    events: list[EventResult]


@router.post(
    "/batch",
    status_code=200,
    response_model=BatchResponse,
    responses=problem_responses(413),
    openapi_extra=body_schema(BatchRequest, limit=MAX_BATCH_BODY_BYTES),
)
async def batch(request: Request, services: ServicesDep) -> JSONResponse:
    """Create tickets and append events in one request (tickets first, events in order).

    Each item is answered as its single call would be, with escalation timers and credit
    rules applied alike; 413 over 10,000 items or 16 MiB.
    """
    raw = await read_body(request, MAX_BATCH_BODY_BYTES)
    tickets, events = _parse(raw)
    runner = BatchRunner(services.tickets, services.sessionmaker, services.clock)
    answer = await run_in_threadpool(runner.run, tickets, events)
    return JSONResponse(answer)


def _parse(raw: bytes) -> tuple[list[Any], list[Any]]:
    """The two item lists; the shape around the items is checked here, the items by the run."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise _invalid("body", None, f"malformed JSON: {exc}", kind="json_invalid") from None
    if not isinstance(body, dict):
        raise _invalid("body", body, "must be a JSON object", kind="dict_type")
    for key in body:
        if key not in ("tickets", "events"):
            raise _invalid(key, body[key], "unknown field (expected tickets and events)")
    lists = []
    for name in ("tickets", "events"):
        value = body.get(name, [])
        if not isinstance(value, list):
            raise _invalid(name, value, "must be an array", kind="list_type")
        lists.append(value)
    count = len(lists[0]) + len(lists[1])
    if count > MAX_ITEMS:
        raise ProblemError(
            Problem(
                status=413,
                slug="too-large",
                detail=f"a batch holds at most {MAX_ITEMS:,} items, tickets and events "
                f"together; this one has {count:,}: split it",
                errors=(FieldError("body", count, f"at most {MAX_ITEMS} items"),),
            )
        )
    return lists[0], lists[1]


def _invalid(field: str, value: Any, message: str, *, kind: str = "value_error") -> Exception:
    loc = ("body",) if field == "body" else ("body", field)
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message, "input": value}])
