"""HTTP routes for escalations: list deliveries, replay one (same `webhook-id`).

Mounted under `/v1` by the app; services are reached through `request.app.state.services`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from sla_engine.errors import NotFound

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


def _log(request: Request) -> Any:
    escalations = getattr(request.app.state.services, "escalations", None)
    if escalations is None:
        raise NotFound("escalations are not enabled in this service", field="escalations")
    return escalations.log


@router.get("/escalations", response_model=DeliveryList)
def list_escalations(
    request: Request,
    ticket: str | None = Query(None, max_length=200, description="only this ticket"),
    status: str | None = Query(
        None, description="queued, sending, sent, dead (dead letters) or cancelled"
    ),
    limit: int = Query(500, ge=1, le=5000),
) -> dict[str, Any]:
    return {"escalations": _log(request).list(ticket=ticket, status=status, limit=limit)}


@router.post("/escalations/{escalation_id}/replay", response_model=Delivery)
def replay_escalation(request: Request, escalation_id: str) -> dict[str, Any]:
    """Queue a dead (or sent) delivery again; it keeps its `webhook-id`."""
    return _log(request).replay(escalation_id)  # type: ignore[no-any-return]
