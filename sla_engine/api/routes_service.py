"""The service's own routes: `/healthz`, `/readyz`, `/metrics` and the API docs at `/docs`.

`/docs` is Swagger UI served from the `swagger-ui-bundle-v2` package, inside the service: the
page loads nothing from the network.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from sla_engine.api.deps import ServicesDep
from sla_engine.api.openapi import problem_responses
from sla_engine.api.problems import RETRY_AFTER_S
from sla_engine.composition import Services
from sla_engine.edge.problems import Problem

router = APIRouter(tags=["service"])

DOCS_ASSETS = "/docs/assets"
LOOP_STALE_S = 10.0
"""`/readyz` fails when the escalation loop has not finished a pass for this long."""


class Health(BaseModel):
    status: str
    database: str


class Readiness(Health):
    scheduler: str


def _database_error(services: Services) -> str | None:
    """None when the database answers `select 1`, else what went wrong."""
    try:
        with services.engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # any database failure means "not healthy", never a 500
        return f"database unavailable: {type(exc).__name__}"
    return None


@router.get("/healthz", response_model=Health, responses=problem_responses(503))
def healthz(services: ServicesDep) -> Response:
    """Liveness: 200 while the process answers and its database answers `select 1`."""
    error = _database_error(services)
    if error is not None:
        return Problem(
            status=503,
            slug="database-unavailable",
            detail=error,
            headers={"Retry-After": RETRY_AFTER_S},
        ).response("/healthz")
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
def readyz(services: ServicesDep) -> Response:
    """Readiness: 503 while the database is unreachable or this process's escalation loop has
    not finished a pass for 10 s (`scheduler` is `not running` where no loop runs)."""
    reasons = []
    error = _database_error(services)
    if error is not None:
        reasons.append(error)
    age = services.escalations.engine.loop_age()
    if age is not None and age > LOOP_STALE_S:
        reasons.append(f"the escalation loop has not turned for {age:.0f} s")
    if reasons:
        return Problem(
            status=503,
            slug="not-ready",
            detail="; ".join(reasons),
            headers={"Retry-After": RETRY_AFTER_S},
        ).response("/readyz")
    scheduler = "not running" if age is None else "ok"
    return JSONResponse({"status": "ready", "database": "ok", "scheduler": scheduler})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text exposition (counters summed over every process of the service)."""
    body = request.app.state.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI, its assets served by the app itself."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
