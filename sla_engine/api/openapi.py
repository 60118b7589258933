"""The OpenAPI document, the truth about the API: every status each operation can answer.

Routes declare their success bodies and the errors only they give
(`responses=problem_responses(402, 409)`). `install` completes every operation with what any
operation of its kind can answer, from the one place that causes it:

- every operation: 414 (URL too long, `limits.py`), and 503 with `Retry-After` unless it never
  touches the database (`/metrics`);
- under `/v1`: 401 and the bearer scheme (`SLA_ENGINE_API_TOKEN`);
- with parameters or a body: 422 (validation);
- with path parameters: 404 (an unknown ticket, calendar, ...);
- with a body: 413 (`limits.py`; the route's limit is shown as `x-body-limit`) and 415.

Every error is `application/problem+json` with the `Problem` schema; FastAPI's own 422 body
(which this API never sends) is replaced.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sla_engine.api.limits import DEFAULT_BODY_BYTES, LIMIT_KEY
from sla_engine.edge.problems import PROBLEM_JSON
from sla_engine.json_types import JsonObject

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: JsonObject = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `field` names the first field at fault and "
    "`errors` each one, with the value sent (shortened).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:sla-engine:problem:invalid-input"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "value": {},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
DESCRIPTIONS = {
    401: "Missing or wrong bearer token (only when the service has one)",
    402: "No support credit left: purchase a ticket",
    404: "No such resource",
    409: "Conflicts with what is stored",
    413: "Request body over the route's limit",
    414: "URL too long",
    415: "Body not declared as JSON",
    422: "Invalid input: the problem names the field",
    503: "Database unavailable or busy: retry after `Retry-After` seconds",
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}
NO_DATABASE = frozenset({"/metrics"})
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def problem_responses(*statuses: int) -> dict[int | str, JsonObject]:
    """`responses=` entries for the problem+json errors a route answers beyond the usual."""
    return {status: _problem_response(status) for status in statuses}


def _problem_response(status: int, description: str | None = None) -> JsonObject:
    entry: JsonObject = {
        "description": description or DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if status == 503:
        entry["headers"] = RETRY_AFTER
    return entry


def install(app: FastAPI, *, token_required: bool) -> None:
    """Serve the completed document at the app's `openapi_url` (built once, on first use)."""

    def openapi() -> JsonObject:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(schema, token_required=token_required)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: JsonObject, *, token_required: bool) -> JsonObject:
    """`schema` with every operation's error answers declared (see the module doc)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <SLA_ENGINE_API_TOKEN>` on /v1, when the "
            "service has a token",
        }
    }
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_operation(path, operation, token_required=token_required)
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return schema


def _complete_operation(path: str, operation: JsonObject, *, token_required: bool) -> None:
    responses: JsonObject = operation["responses"]
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = {414}
    if path not in NO_DATABASE:
        statuses.add(503)
    if path == "/v1" or path.startswith("/v1/"):
        statuses.add(401)
        operation["security"] = [{"bearer": []}] if token_required else [{"bearer": []}, {}]
    if parameters or has_body:
        statuses.add(422)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if has_body:
        statuses |= {413, 415}
        operation.setdefault(LIMIT_KEY, DEFAULT_BODY_BYTES)
    for status in sorted(statuses):
        responses.setdefault(str(status), {})
    for code, response in list(responses.items()):
        if code.startswith(("4", "5")):
            described = response.get("description")
            own = described if described not in (None, "", "Validation Error") else None
            responses[code] = {**response, **_problem_response(int(code), own)}
        elif code.startswith("2") and not response.get("content"):
            response["content"] = _success_content(responses)


def _success_content(responses: JsonObject) -> JsonObject:
    """The body of a 2xx answer declared without one: that of the route's other 2xx answer."""
    for code, response in responses.items():
        if code.startswith("2") and response.get("content"):
            return dict(response["content"])
    return {"application/json": {"schema": {}}}
