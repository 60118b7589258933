"""Request bodies read by hand on the hot routes.

FastAPI's generic body handling (dependency solving, `Request.json`, then the model) costs a
good part of a cheap request; pydantic's JSON parser straight on the bytes gives the same
model and the same 422 errors (`loc` starting with "body"). `body_schema` keeps the body
documented in OpenAPI.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from sla_engine.api.limits import body_limit, set_body_limit
from sla_engine.api.problems import (
    ProblemError,
    is_json_content_type,
    unsupported_media_type,
)
from sla_engine.json_types import JsonObject

M = TypeVar("M", bound=BaseModel)


def body_schema(model: type[BaseModel], *, limit: int | None = None) -> JsonObject:
    """`openapi_extra` documenting `model` as the required JSON body ($defs inlined), and the
    route's body limit when it is not the default (give the same to `read_body`)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    extra: JsonObject = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": resolve(schema)}},
        }
    }
    if limit is not None:
        extra.update(body_limit(limit))
    return extra


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The raw body, declared JSON (else 415), at most `limit` bytes, by default the route's
    declared limit (`body_schema(..., limit=)`); over it a 413, from `limits.RequestLimits` as
    the bytes arrive."""
    content_type = request.headers.get("content-type")
    if not is_json_content_type(content_type):
        raise ProblemError(unsupported_media_type(content_type))
    if limit is not None:
        set_body_limit(request.scope, limit)
    return await request.body()


async def read_model(request: Request, model: type[M], limit: int | None = None) -> M:
    """The body as `model`; a 422 naming the field (as FastAPI's own) when it does not fit."""
    raw = await read_body(request, limit)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from None
