"""Bearer auth on /v1, /healthz, and the Prometheus /metrics exposition."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.storage.db import make_engine, make_sessionmaker
from tests.support.api import running_api
from tests.support.server import serve_app

TOKEN = "s3cret-token"


def test_token_guards_v1_only(sqlite_url: str) -> None:
    with running_api(sqlite_url, token=TOKEN) as (client, _):
        for headers, why in (
            ({}, "missing"),
            ({"Authorization": "Bearer nope"}, "wrong"),
            ({"Authorization": TOKEN}, "wrong"),
        ):
            for path in ("/v1/calendars", "/v1/no-such-route"):
                answer = client.get(path, headers=headers)
                assert answer.status_code == 401
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["www-authenticate"].startswith("Bearer")
                body = answer.json()
                assert body["field"] == "Authorization" and why in body["detail"]
        posted = client.post(
            "/v1/tickets",
            json={"id": "A", "policy": "standard", "created_at": "2026-11-20T13:00:00Z"},
        )
        assert posted.status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/v1/calendars", headers=good).status_code == 200
        assert client.get("/v1/tickets/A", headers=good).status_code == 404  # nothing written
        for open_path in ("/healthz", "/metrics", "/docs", "/openapi.json"):
            assert client.get(open_path).status_code == 200, open_path


def test_token_from_environment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_ENGINE_API_TOKEN", TOKEN)
    from sla_engine.composition import build_services
    from sla_engine.config import load_config

    services = build_services(load_config(None, env={}, database_url=sqlite_url))
    try:
        with serve_app(create_app(services)) as base:
            assert httpx.get(f"{base}/v1/calendars").status_code == 401
            ok = httpx.get(f"{base}/v1/calendars", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
    finally:
        services.close()


def test_no_token_means_open(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLA_ENGINE_API_TOKEN", raising=False)
    with running_api(sqlite_url) as (client, _):
        assert client.get("/v1/calendars").status_code == 200


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, None when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_by_route_and_sla_state(db_url: str) -> None:
    with running_api(db_url) as (client, _):
        tickets = (("A", "2026-11-24T09:00:00-07:00"), ("B", "2026-11-25T04:00:00-07:00"))
        for tid, created in tickets:
            answer = client.post(
                "/v1/tickets", json={"id": tid, "policy": "standard", "created_at": created}
            )
            assert answer.status_code == 201
        client.get("/v1/tickets/A")
        client.get("/v1/tickets/nope")
        client.get("/v1/definitely/not/here")
        text = client.get("/metrics").text
        assert (
            sample(
                text,
                "sla_engine_http_requests_total",
                method="POST",
                route="/v1/tickets",
                status="201",
            )
            == 2.0
        )
        assert (
            sample(
                text,
                "sla_engine_http_requests_total",
                method="GET",
                route="/v1/tickets/{ticket_id}",
                status="404",
            )
            == 1.0
        )
        assert (
            sample(
                text,
                "sla_engine_http_requests_total",
                method="GET",
                route="<unmatched>",
                status="404",
            )
            == 1.0
        )
        assert (
            sample(
                text,
                "sla_engine_http_request_duration_seconds_count",
                method="GET",
                route="/v1/tickets/{ticket_id}",
            )
            == 2.0
        )
        assert sample(text, "sla_engine_open_tickets") == 2.0
        # A (Tuesday 09:00 + 4h) is past its breach at NOW (Wednesday 05:00); B is not yet open.
        assert sample(text, "sla_engine_breached_metrics", metric="first_response") == 1.0
        assert (
            sample(text, "sla_engine_sla_metrics", metric="first_response", status="active") == 1.0
        )


def test_healthz_reports_an_unreachable_database() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    services = SimpleNamespace(
        engine=engine, sessionmaker=make_sessionmaker(engine), clock=lambda: datetime.now(UTC)
    )
    try:
        with serve_app(create_app(services, api_token="")) as base:
            answer = httpx.get(f"{base}/healthz", timeout=30)
            assert answer.status_code == 503
            assert answer.headers["content-type"] == "application/problem+json"
            scrape = httpx.get(f"{base}/metrics", timeout=30)
            assert scrape.status_code == 200  # a scrape survives a database outage
    finally:
        engine.dispose()
