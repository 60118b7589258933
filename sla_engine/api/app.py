"""The FastAPI application: routers, problem+json errors, bearer auth, metrics, health.

`create_app(services)` wires one app to one `Services`; routes take it as a parameter
`services: ServicesDep` (`api/deps.py`). Starting and stopping the background loops belongs
to whoever runs the app (`sla-engine serve`), not to the app.
"""

from __future__ import annotations

import hmac
import os
from importlib import metadata

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from sla_engine.api import openapi, problems, service_calls
from sla_engine.api.dashboard import router as dashboard_router
from sla_engine.api.limits import RequestLimits
from sla_engine.api.prometheus import AppMetrics, MetricsMiddleware
from sla_engine.api.routes_batch import router as batch_router
from sla_engine.api.routes_calendars import router as calendars_router
from sla_engine.api.routes_credits import router as credits_router
from sla_engine.api.routes_deadlines import router as deadlines_router
from sla_engine.api.routes_escalations import router as escalations_router
from sla_engine.api.routes_policies import router as policies_router
from sla_engine.api.routes_queue import router as queue_router
from sla_engine.api.routes_reports import router as reports_router
from sla_engine.api.routes_service import install_docs
from sla_engine.api.routes_service import router as service_router
from sla_engine.api.routes_tickets import router as tickets_router
from sla_engine.composition import Services
from sla_engine.edge.problems import FieldError, Problem

API_PREFIX = "/v1"
TOKEN_ENV = "SLA_ENGINE_API_TOKEN"
DESCRIPTION = """\
Business-hours deadlines, ticket SLA clocks replayed from their event log, attainment
reports. Times are ISO 8601 with a UTC offset; durations are `"4h"`, `"90m"`, `"1h30m"`,
`"45s"` (business time) or a number of seconds. Every error is an RFC 9457
`application/problem+json` body naming the field at fault.
"""


def _version() -> str:
    try:
        return metadata.version("sla_engine")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on `/v1` (pure ASGI, constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or not _is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, credentials = given.strip().partition(b" ")
        # RFC 7235: the scheme is case-insensitive ("bearer" is "Bearer").
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.expected):
            await self.app(scope, receive, send)
            return
        why = "missing" if not given else "wrong"
        problem = Problem(
            status=401,
            slug="unauthorized",
            detail=f"{why} bearer token: send 'Authorization: Bearer <token>' on /v1",
            errors=(FieldError("Authorization", None, f"{why} bearer token"),),
            headers={"WWW-Authenticate": 'Bearer realm="sla_engine"'},
        )
        await problem.response(scope["path"])(scope, receive, send)


def _is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _include(app: FastAPI, router: APIRouter) -> None:
    """Mount a router under /v1 unless its paths already carry the prefix."""
    paths = [getattr(route, "path", "") for route in router.routes]
    if paths and all(_is_api_path(p) for p in paths):
        app.include_router(router)
    else:
        app.include_router(router, prefix=API_PREFIX)


def create_app(services: Services, *, api_token: str | None = None) -> FastAPI:
    """The HTTP API over `services`; `api_token` defaults to $SLA_ENGINE_API_TOKEN."""
    token = api_token if api_token is not None else os.environ.get(TOKEN_ENV) or None
    app = FastAPI(
        title="sla_engine",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.metrics = AppMetrics(services)
    service_calls.install(app, services.engine)
    problems.install(app)
    openapi.install(app, token_required=bool(token))
    app.add_middleware(RequestLimits)
    app.add_middleware(BearerAuth, token=token)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics.http)
    for router in (
        deadlines_router,
        tickets_router,  # before calendars: an event is matched after the 3 deadline routes only
        calendars_router,
        queue_router,
        policies_router,
        reports_router,
        escalations_router,
        credits_router,
        batch_router,
    ):
        _include(app, router)
    app.include_router(dashboard_router)  # `/`: public page; its data calls go to /v1
    app.include_router(service_router)  # /healthz, /readyz, /metrics
    install_docs(app)
    return app
