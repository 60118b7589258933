"""Every error the API answers, as an RFC 9457 problem (`sla_engine/edge/problems.py`).

Engine errors (`sla_engine.errors`), request validation, unknown routes, wrong methods and
authentication all come through here. A database that is away or busy (SQLAlchemy
`OperationalError`: lost connection, lock timeout, deadlock) is a 503 with `Retry-After` (the
transaction was rolled back), logged once per 10 s however many requests fail; anything else
is a bug and becomes a logged 500 problem without a traceback in the body.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sla_engine.edge.problems import (
    FieldError,
    Problem,
    engine_problem,
    validation_problem,
    without_long_value,
)
from sla_engine.errors import SlaEngineError
from sla_engine.logging_setup import OutageLog

log = logging.getLogger("sla_engine.api")
database_outage = OutageLog("api", log)

RETRY_AFTER_S = "1"


class ProblemError(StarletteHTTPException):
    """Raised inside the API to answer with a given problem.

    An HTTP exception, so that one raised while FastAPI reads a body (the body limit) is not
    turned into FastAPI's generic 400."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.detail, dict(problem.headers))
        self.problem = problem


def invalid(field_name: str, value: object, message: str) -> ProblemError:
    """A 422 problem for one bad field."""
    return ProblemError(
        Problem(
            status=422,
            slug="invalid-input",
            detail=f"{field_name}: {message}",
            errors=(FieldError(field_name, value, message),),
        )
    )


def is_json_content_type(value: str | None) -> bool:
    media = (value or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_media_type(content_type: str | None) -> Problem:
    """415: the body must be JSON, declared so (a CSRF guard: forms cannot send it)."""
    return Problem(
        status=415,
        slug="unsupported-media-type",
        detail="send the body as JSON with 'Content-Type: application/json'",
        errors=(FieldError("Content-Type", content_type, "must be application/json"),),
    )


def too_large(limit: int) -> Problem:
    """413 for a body over `limit` bytes; the connection is closed (the rest is not read)."""
    return Problem(
        status=413,
        slug="too-large",
        detail=f"request body exceeds {limit} bytes, the limit of this route",
        errors=(FieldError("body", None, f"at most {limit} bytes"),),
        headers={"Connection": "close"},
    )


def uri_too_long(limit: int, length: int) -> Problem:
    return Problem(
        status=414,
        slug="uri-too-long",
        detail=f"the URL is {length} bytes long; at most {limit} are accepted",
        errors=(FieldError("path", None, f"at most {limit} bytes of path and query"),),
    )


def database_unavailable(exc: BaseException | None = None) -> Problem:
    """503 + Retry-After: the database is away or busy; nothing was written."""
    why = "" if exc is None else f" ({type(exc).__name__})"
    return Problem(
        status=503,
        slug="database-unavailable",
        detail="the database is unavailable or busy (lock timeout, deadlock, lost "
        f"connection){why}; nothing was written: retry the request",
        headers={"Retry-After": RETRY_AFTER_S},
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return exc.problem.response(request.url.path)


async def _on_engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SlaEngineError)
    return engine_problem(exc).response(request.url.path)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problem = validation_problem(exc)
    if problem.errors[:1] and problem.errors[0].field == "body":
        content_type = request.headers.get("content-type")
        if not is_json_content_type(content_type):
            problem = unsupported_media_type(content_type)
    return problem.response(request.url.path)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    errors: tuple[FieldError, ...] = ()
    path = request.url.path
    if status == 404:
        detail = without_long_value(f"no such resource: {request.method} {path}", path)
        errors = (FieldError("path", path, "no route matches this path"),)
    elif status == 405:
        detail = without_long_value(f"method {request.method} is not allowed on {path}", path)
        errors = (FieldError("method", request.method, detail),)
    elif status == 400 and "parsing the body" in detail:
        status, detail = 422, "body: malformed request body (expected JSON)"
        errors = (FieldError("body", None, "malformed request body (expected JSON)"),)
    slug = {404: "not-found", 405: "method-not-allowed", 422: "invalid-input"}.get(
        status, "http-error"
    )
    headers = dict(exc.headers or {})
    return Problem(status, slug, detail, errors=errors, headers=headers).response(request.url.path)


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    database_outage.failed(exc)
    return database_unavailable(exc).response(request.url.path)


async def _on_bug(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Problem(
        status=500,
        slug="internal-error",
        detail="internal error; it has been logged",
    ).response(request.url.path)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(SlaEngineError, _on_engine_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_bug)
