"""uvicorn's HTTP protocol, answering requests it cannot parse with problem+json.

uvicorn answers a request its parser refuses (a URL over 64 KiB, a malformed request line or
header) with its own `text/plain` 400. `sla-engine serve` runs this subclass instead, whose
answer is the API's problem+json: a 414 when the URL is what is too long, else a 400. Shorter
long URLs never get here: `limits.RequestLimits` answers them (414 above 8 KiB).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sla_engine.api.limits import MAX_URL_BYTES
from sla_engine.api.problems import uri_too_long
from sla_engine.edge.problems import PROBLEM_JSON, FieldError, Problem


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose parser errors are problem+json (`http=` of uvicorn's config)."""

    def send_400_response(self, msg: str) -> None:
        url_length = len(getattr(self, "url", b"") or b"")
        if url_length > MAX_URL_BYTES:
            problem = uri_too_long(MAX_URL_BYTES, url_length)
        else:
            problem = Problem(
                status=400,
                slug="bad-request",
                detail="the HTTP request could not be parsed (request line or headers)",
                errors=(FieldError("request", None, msg),),
            )
        body = json.dumps(problem.to_json()).encode()
        head = [f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(
            f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n".encode()
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
