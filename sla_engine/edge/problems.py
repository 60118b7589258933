"""RFC 9457 problem details: one shape for every error the API answers and every import line
it refuses.

A problem names the field and the value at fault (`field`, and `errors` for each one), so a
client can show the user what to fix. `validation_problem` turns pydantic's errors into one,
`engine_problem` an engine error (`sla_engine.errors`, which carries its HTTP status).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from starlette.responses import Response

from sla_engine.errors import SlaEngineError
from sla_engine.json_types import JsonObject

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:sla-engine:problem:"
_MAX_VALUE_CHARS = 200
_DETAIL_VALUE_CHARS = 40
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
    value: object
    message: str

    def to_json(self) -> JsonObject:
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

    def to_json(self, instance: str | None = None) -> JsonObject:
        """The body; each value at fault is echoed once, in `errors`, shortened."""
        body: JsonObject = {
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


def json_safe(value: object) -> object:
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


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def without_long_value(message: str, value: object) -> str:
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


def field_path(loc: Iterable[object]) -> str:
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


class ValidationErrors(Protocol):
    """pydantic's `ValidationError` or FastAPI's `RequestValidationError`."""

    def errors(self) -> Sequence[Any]: ...


def validation_problem(exc: ValidationErrors) -> Problem:
    """A 422 problem naming each field pydantic refused (`items[3].start`), with its value."""
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


def engine_problem(exc: SlaEngineError) -> Problem:
    """Map an engine error to its problem (the error carries its HTTP status)."""
    slugs = {402: "payment-required", 404: "not-found", 409: "conflict", 422: "invalid-input"}
    status = exc.status if exc.status in slugs else 422
    message = without_long_value(exc.message, exc.value)
    errors: tuple[FieldError, ...] = ()
    if exc.field:
        errors = (FieldError(exc.field, exc.value, message),)
    return Problem(status=status, slug=slugs[status], detail=message, errors=errors)
