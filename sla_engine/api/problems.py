"""RFC 9457 problem details: every error the API answers, in one shape.

A problem names the field and the value at fault (`field`, and `errors` for each one), so a
client can show the user what to fix. Engine errors (`sla_engine.errors`), request validation,
unknown routes, wrong methods and authentication all come through here. A database that is
away or busy (SQLAlchemy `OperationalError`: lost connection, lock timeout, deadlock) is a 503
with `Retry-After` (the transaction was rolled back), logged once per 10 s however many requests
fail; anything else is a bug and becomes a logged 500 problem without a traceback in the body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sla_engine.errors import SlaEngineError
from sla_engine.logging_setup import OutageLog

log = logging.getLogger("sla_engine.api")
database_outage = OutageLog("api", log)

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:sla-engine:problem:"
_MAX_VALUE_CHARS = 200
_DETAIL_VALUE_CHARS = 40
RETRY_AFTER_S = "1"
NAIVE_MESSAGE = "needs a UTC offset (e.g. 2026-11-20T13:00:00-07:00); naive times are refused"
TITLES = {
    "invalid-input": "Invalid input",
    "not-found": "Not found",
    "conflict": "Conflict",
    "payment-required": "Payment required",
    "unauthorized": "Unauthorized",
    "method-not-allowed": "Method not allowed",
    "unsupported-media-type": "Unsupported media type",
    "too-large": "Request body too large",
    "uri-too-long": "URL too long",
    "bad-request": "Malformed HTTP request",
    "database-unavailable": "Database unavailable",
    "not-ready": "Not ready",
    "internal-error": "Internal error",
}
"""One title per problem type (RFC 9457: the title does not change from one occurrence to the
next); a type missing here takes its status's reason phrase."""


@dataclass(frozen=True)
class FieldError:
    """One bad field: where it is, what was sent, what is wrong."""

    field: str
    value: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "value": json_safe(self.value), "message": self.message}


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem; `slug` becomes its `type` URI."""

    status: int
    slug: str
    detail: str
    title: str | None = None
    """Ignored for the types in `TITLES`, which fixes their title."""
    errors: Sequence[FieldError] = field(default_factory=tuple)
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self, instance: str | None = None) -> dict[str, Any]:
        """The body; each value at fault is echoed once, in `errors`, shortened."""
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": TITLES.get(self.slug) or self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if instance and len(instance) <= _MAX_VALUE_CHARS:  # a cut URI identifies nothing
            body["instance"] = instance
        if self.errors:
            body["field"] = self.errors[0].field
            body["errors"] = [e.to_json() for e in self.errors]
        return body

    def response(self, instance: str | None = None) -> Response:
        return Response(
            content=json.dumps(self.to_json(instance)),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=dict(self.headers),
        )


class ProblemError(StarletteHTTPException):
    """Raised inside the API to answer with a given problem.

    An HTTP exception, so that one raised while FastAPI reads a body (the body limit) is not
    turned into FastAPI's generic 400."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.detail, dict(problem.headers))
        self.problem = problem


def invalid(field_name: str, value: Any, message: str) -> ProblemError:
    """A 422 problem for one bad field."""
    return ProblemError(
        Problem(
            status=422,
            slug="invalid-input",
            detail=f"{field_name}: {message}",
            errors=(FieldError(field_name, value, message),),
        )
    )


def json_safe(value: Any) -> Any:
    """`value` if JSON can carry it unchanged (and it is short), else a short text of it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE_CHARS else value[:_MAX_VALUE_CHARS] + "..."
    if isinstance(value, bytes):
        return json_safe(value.decode("utf-8", errors="replace"))
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return _short(value)
    return value if len(text) <= _MAX_VALUE_CHARS else _short(value)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def without_long_value(message: str, value: Any) -> str:
    """`message` with a long `value` it quotes replaced by its length, so a 65,000-character
    id is not sent back in the detail as well as in `errors`."""
    if value is None or isinstance(value, bool | int | float):
        return message
    text = value if isinstance(value, str) else str(value)
    if len(text) <= _DETAIL_VALUE_CHARS:
        return message
    for quoted in (repr(value), text):
        message = message.replace(quoted, f"<{len(text)} characters>")
    return message


def field_path(loc: Iterable[Any]) -> str:
    """('body', 'items', 3, 'start') -> 'items[3].start'; a bare body -> 'body'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors: list[FieldError] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            errors.append(FieldError("body", None, f"malformed JSON: {err.get('msg', '')}"))
            continue
        if kind == "missing":
            errors.append(FieldError(field_path(loc), None, "field required"))
            continue
        if kind == "timezone_aware":
            errors.append(FieldError(field_path(loc), err.get("input"), NAIVE_MESSAGE))
            continue
        if kind in ("model_attributes_type", "dict_type", "model_type"):
            errors.append(FieldError(field_path(loc), err.get("input"), "must be a JSON object"))
            continue
        message = str(err.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors.append(FieldError(field_path(loc), err.get("input"), message))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
    return Problem(status=422, slug="invalid-input", detail=detail, errors=errors)


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


def engine_problem(exc: SlaEngineError) -> Problem:
    """Map an engine error to its problem (the error carries its HTTP status)."""
    slugs = {402: "payment-required", 404: "not-found", 409: "conflict", 422: "invalid-input"}
    status = exc.status if exc.status in slugs else 422
    message = without_long_value(exc.message, exc.value)
    errors: tuple[FieldError, ...] = ()
    if exc.field:
        errors = (FieldError(exc.field, exc.value, message),)
    return Problem(status=status, slug=slugs[status], detail=message, errors=errors)


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


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return exc.problem.response(request.url.path)

    async def on_engine_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SlaEngineError)
        return engine_problem(exc).response(request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problem = _validation_problem(exc)
        if problem.errors[:1] and problem.errors[0].field == "body":
            content_type = request.headers.get("content-type")
            if not is_json_content_type(content_type):
                problem = unsupported_media_type(content_type)
        return problem.response(request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
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
        return Problem(status, slug, detail, errors=errors, headers=headers).response(
            request.url.path
        )

    async def on_database_unavailable(request: Request, exc: Exception) -> Response:
        database_outage.failed(exc)
        return database_unavailable(exc).response(request.url.path)

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return Problem(
            status=500,
            slug="internal-error",
            detail="internal error; it has been logged",
        ).response(request.url.path)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(SlaEngineError, on_engine_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database_unavailable)
    app.add_exception_handler(Exception, on_bug)
