"""HTTP routes for escalations: list deliveries, replay one (same `webhook-id`).

Mounted under `/v1` by the app; the escalation log comes from the app's services (`ServicesDep`).
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from sla_engine.api.deps import ServicesDep
from sla_engine.api.openapi import problem_responses
from sla_engine.json_types import JsonObject

router = APIRouter(tags=["escalations"])


class Delivery(BaseModel):
    """One notification to one destination; `id` is its `webhook-id`."""

    id: str
    ticket: str
    metric: str
    cycle: int
    threshold: str
    destination: str
    kind: str
    status: str
    attempts: int
    due_at: str | None
    not_before: str | None
    sent_at: str | None
    last_status: int | None
    last_error: str | None


class DeliveryList(BaseModel):
    escalations: list[Delivery]


@router.get("/escalations", response_model=DeliveryList)
def list_escalations(
    services: ServicesDep,
    ticket: str | None = Query(None, max_length=200, description="only this ticket"),
    status: str | None = Query(
        None, description="queued, sending, sent, dead (dead letters) or cancelled"
    ),
    limit: int = Query(500, ge=1, le=5000),
) -> JsonObject:
    deliveries = services.escalations.log.list(ticket=ticket, status=status, limit=limit)
    return {"escalations": deliveries}


@router.post(
    "/escalations/{escalation_id}/replay",
    response_model=Delivery,
    responses=problem_responses(409),
)
def replay_escalation(services: ServicesDep, escalation_id: str) -> JsonObject:
    """Queue a dead (or sent) delivery again; it keeps its `webhook-id`."""
    return services.escalations.log.replay(escalation_id)
