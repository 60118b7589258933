"""`GET /` (the dashboard page) and `GET /dashboard/{asset}` (its script, styles, icon).

Assets are read once from the package (so they ship in the wheel) and carry a content hash:
the page links `dashboard.js?v=HASH`, which is cached for a year as immutable, while the page
itself is revalidated on every load (`no-cache` with an ETag), so a new release is seen at
once. A strict Content-Security-Policy allows only this origin: no inline script, no
third-party host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from sla_engine.edge.problems import FieldError, Problem

router = APIRouter(include_in_schema=False)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = ("dashboard.js", "dashboard.css", "favicon.svg")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :]
    return Asset(body, _TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])


def _load() -> tuple[Asset, dict[str, Asset]]:
    assets = {name: _asset(name, _read(name)) for name in ASSETS}
    page = _read("index.html").decode()
    for name, asset in assets.items():
        page = page.replace(f"{{{{v:{name}}}}}", asset.digest)
    return _asset("index.html", page.encode()), assets


PAGE, STATIC = _load()


def _answer(request: Request, asset: Asset, cache: str) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, **SECURITY_HEADERS}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(asset.body))
    return response


@router.api_route("/", methods=["GET", "HEAD"])
def dashboard(request: Request) -> Response:
    """The dashboard page."""
    return _answer(request, PAGE, REVALIDATE)


@router.api_route("/dashboard/{name}", methods=["GET", "HEAD"])
def dashboard_asset(name: str, request: Request) -> Response:
    """A static asset of the page; immutable when asked for by its current hash."""
    asset = STATIC.get(name)
    if asset is None:
        return Problem(
            status=404,
            slug="not-found",
            detail=f"no such dashboard asset: {name}",
            errors=(FieldError("name", name, f"one of {', '.join(ASSETS)}"),),
        ).response(request.url.path)
    fresh = request.query_params.get("v") == asset.digest
    return _answer(request, asset, IMMUTABLE if fresh else REVALIDATE)
