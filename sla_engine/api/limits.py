"""Request limits, enforced as the request arrives: URL length and body size.

One ASGI middleware caps every request: a URL (path and query) over `MAX_URL_BYTES` is a 414,
and a body over its route's limit is a 413 as soon as the `Content-Length` announces it or
the bytes read pass it, whichever comes first; nothing past the limit is read, and the
connection is closed (a client streaming 66 MB is cut off after the first chunk over the cap).

The limit is `DEFAULT_BODY_BYTES` unless the route raises it: declaratively with
`openapi_extra=body_limit(N)` (documented in the OpenAPI document as `x-body-limit`), or by
reading its body through `bodies.read_body(request, N)`. URLs over uvicorn's own parser limit
(64 KiB) are answered by `protocol.ProblemHttpToolsProtocol`, in the same problem+json form.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sla_engine.api.problems import ProblemError, too_large, uri_too_long
from sla_engine.json_types import JsonObject

DEFAULT_BODY_BYTES = 1024 * 1024
"""Bodies of single resources are far smaller; a calendar with its ICS text fits."""
MAX_URL_BYTES = 8 * 1024
"""Ids are at most 200 characters and queries a handful of parameters."""
LIMIT_KEY = "x-body-limit"
_SCOPE_KEY = "sla_engine.body_limit"


def body_limit(limit: int) -> JsonObject:
    """`openapi_extra` raising (or lowering) a route's body limit to `limit` bytes."""
    return {LIMIT_KEY: limit}


def set_body_limit(scope: Scope, limit: int) -> None:
    """This request's body limit, set by the route before it reads the body."""
    scope[_SCOPE_KEY] = limit


def _limit_of(scope: Scope, default: int) -> int:
    limit = scope.get(_SCOPE_KEY)
    if isinstance(limit, int):
        return limit
    extra = getattr(scope.get("route"), "openapi_extra", None) or {}
    declared = extra.get(LIMIT_KEY)
    return declared if isinstance(declared, int) else default


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLimits:
    """Pure ASGI middleware: 414 for a long URL, 413 for a body over its route's limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_bytes: int = DEFAULT_BODY_BYTES,
        url_bytes: int = MAX_URL_BYTES,
    ) -> None:
        self.app = app
        self.body_bytes = body_bytes
        self.url_bytes = url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_length = len(scope.get("raw_path") or scope["path"]) + len(scope["query_string"])
        if url_length > self.url_bytes:
            problem = uri_too_long(self.url_bytes, url_length)
            await problem.response()(scope, receive, send)
            return
        announced = _content_length(scope)
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            limit = _limit_of(scope, self.body_bytes)
            if announced is not None and announced > limit:
                raise ProblemError(too_large(limit))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ProblemError(too_large(limit))
            return message

        await self.app(scope, receive_within_limit, send)
