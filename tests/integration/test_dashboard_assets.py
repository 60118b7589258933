"""The dashboard's page and assets as HTTP resources (no browser): content types, caching,
security headers, no third-party host, and the page public while `/v1` needs the token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.api.dashboard import routes
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.server import serve_app


@pytest.fixture
def base(sqlite_url: str) -> Iterator[str]:
    services = build_services(load_config(None, env={}, database_url=sqlite_url))
    try:
        with serve_app(create_app(services, api_token="t0ken")) as url:
            yield url
    finally:
        services.close()


def test_page_and_assets_are_served_with_types_and_cache_headers(base: str) -> None:
    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{base}/", headers={"if-none-match": page.headers["etag"]}).status_code == 304

    links = list(re.findall(r'(?:src|href)="([^"#]+)"', page.text))
    assert links and all(link.startswith("/dashboard/") for link in links), links
    kinds = {
        "dashboard.js": "text/javascript; charset=utf-8",
        "dashboard.css": "text/css; charset=utf-8",
        "favicon.svg": "image/svg+xml",
    }
    for link in set(links):
        name, _, version = link.removeprefix("/dashboard/").partition("?v=")
        asset = httpx.get(base + link)
        assert asset.status_code == 200
        assert asset.headers["content-type"] == kinds[name]
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert version == routes.STATIC[name].digest
        unversioned = httpx.get(f"{base}/dashboard/{name}")
        assert unversioned.headers["cache-control"] == "no-cache"
        own = asset.text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a host
        assert "http://" not in own and "https://" not in own, f"{name} names another host"
    head = httpx.head(f"{base}/dashboard/dashboard.js")
    assert head.status_code == 200 and head.content == b""
    missing = httpx.get(f"{base}/dashboard/nope.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_the_page_is_public_while_its_data_needs_the_token(base: str) -> None:
    assert httpx.get(f"{base}/").status_code == 200
    assert httpx.get(f"{base}/dashboard/dashboard.js").status_code == 200
    assert httpx.get(f"{base}/v1/calendars").status_code == 401
    authorised = httpx.get(f"{base}/v1/calendars", headers={"authorization": "Bearer t0ken"})
    assert authorised.status_code == 200


def test_the_dashboard_stays_out_of_the_api_document(base: str) -> None:
    paths: dict[str, Any] = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/dashboard") for p in paths)


def test_assets_ship_inside_the_package() -> None:
    static = Path(routes.__file__).parent / "static"
    assert sorted(p.name for p in static.iterdir()) == sorted([*routes.ASSETS, "index.html"])
    assert "{{v:" not in routes.PAGE.body.decode()
