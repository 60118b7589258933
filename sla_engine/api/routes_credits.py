"""Support credits (docs/CREDITS.md): grants, subscriptions, balances, the ledger, RSAA, and
which product versions are supported or legacy.

Credit spending itself happens on `POST /v1/tickets` (402 problem+json when no credit is
left) and on the credit events of `POST /v1/tickets/{id}/events`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from sla_engine.api.deps import ServicesDep
from sla_engine.core.products import version_status
from sla_engine.edge.requests import GrantRequest, Identifier, Instant, SubscriptionRequest
from sla_engine.json_types import JsonObject

router = APIRouter(tags=["credits"])


@router.post("/accounts/{account}/grants", status_code=201)
def grant(account: str, body: GrantRequest, services: ServicesDep) -> JSONResponse:
    """Add credits to the account: one ledger lot expiring 12 calendar months later."""
    answer = services.credits.grant(
        account,
        body.kind,
        body.occurred_at,
        quantity=body.quantity,
        price_per_ticket=body.price_per_ticket,
        package=body.package,
    )
    return JSONResponse(answer, status_code=201)


@router.post("/accounts/{account}/subscriptions", status_code=201)
def subscribe(account: str, body: SubscriptionRequest, services: ServicesDep) -> JSONResponse:
    """Record a hosted-service subscription (or end an open-ended one)."""
    answer = services.credits.subscribe(account, body.kind, body.start, body.end)
    return JSONResponse(answer, status_code=201)


@router.get("/accounts/{account}/credits")
def credits(
    account: str,
    services: ServicesDep,
    at: Annotated[
        Instant | None, Query(description="balance at this instant; default: now")
    ] = None,
) -> JsonObject:
    """Email and emergency credits usable at `at`, whether a subscription makes email
    unlimited, and the unexpired lots with credits left, in the order they will be used."""
    return services.credits.credits(account, at)


@router.get("/accounts/{account}/ledger")
def ledger(account: str, services: ServicesDep) -> JsonObject:
    """Every ledger entry of the account, in the order recorded (append-only)."""
    return services.credits.ledger(account)


@router.get("/tickets/{ticket_id}/rsaa")
def rsaa(
    ticket_id: Identifier,
    services: ServicesDep,
    at: Annotated[Instant | None, Query(description="state at this instant; default: now")] = None,
) -> JsonObject:
    """The ticket's remote server access agreement: granted or not, with its audit trail."""
    return services.credits.rsaa(ticket_id, at)


@router.get("/products/{product}/versions/{version}")
def product_version(product: str, version: str, services: ServicesDep) -> JsonObject:
    """Supported (current and previous major) or legacy (no minor updates; tickets accepted)."""
    return version_status(product, version, services.config.products).to_json()
