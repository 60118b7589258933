"""Bad input on every endpoint: a 4xx problem+json naming the field, and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.server import serve_app
from tests.integration.test_api_flow import row_counts, running_api

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
START = "2026-11-20T13:00:00-07:00"
TICKET = {"id": "T-1", "policy": "standard", "created_at": START}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api-errors') / 'sla.db'}"
    services = build_services(load_config(None, env={}, database_url=url), clock=lambda: NOW)
    try:
        with serve_app(create_app(services, api_token="")) as base:
            with httpx.Client(base_url=base, timeout=30) as client:
                assert client.post("/v1/tickets", json=TICKET).status_code == 201
                yield client, services
    finally:
        services.close()


def deadline(**fields: Any) -> dict[str, Any]:
    return {"calendar": "smartertools", "start": START, "duration": "4h", **fields}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def item(**fields: Any) -> dict[str, Any]:
    return {"start": START, "duration": "4h", **fields}


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "e-x", "type": "agent_reply", "occurred_at": START, **fields}


# (method, path, json body or None, query params, expected status, expected field)
CASES: list[tuple[str, str, Any, dict[str, str] | None, int, str]] = [
    # POST /v1/deadlines
    ("POST", "/v1/deadlines", without(deadline(), "start"), None, 422, "start"),
    ("POST", "/v1/deadlines", deadline(start="2026-11-20T13:00:00"), None, 422, "start"),
    ("POST", "/v1/deadlines", deadline(start=1763668800), None, 422, "start"),
    ("POST", "/v1/deadlines", deadline(start="next friday"), None, 422, "start"),
    ("POST", "/v1/deadlines", deadline(start="2026-02-30T10:00:00Z"), None, 422, "start"),
    ("POST", "/v1/deadlines", deadline(calendar="mars"), None, 422, "calendar"),
    ("POST", "/v1/deadlines", deadline(calendar="../../etc/passwd"), None, 422, "calendar"),
    ("POST", "/v1/deadlines", deadline(calendar="/tmp/evil.toml"), None, 422, "calendar"),
    ("POST", "/v1/deadlines", deadline(calendar=7), None, 422, "calendar"),
    ("POST", "/v1/deadlines", without(deadline(), "calendar"), None, 422, "calendar"),
    ("POST", "/v1/deadlines", without(deadline(), "duration"), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration="4d"), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration="-4h"), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration=-5), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration=True), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration=[4]), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration="99999999999h"), None, 422, "duration"),
    ("POST", "/v1/deadlines", deadline(duration=1e300), None, 422, "duration"),
    (
        "POST",
        "/v1/deadlines",
        deadline(start="2999-12-31T12:00:00Z", duration="500000h"),
        None,
        422,
        "duration",
    ),
    ("POST", "/v1/deadlines", deadline(colour="red"), None, 422, "colour"),
    ("POST", "/v1/deadlines", {"policy": "platinum", "start": START}, None, 422, "policy"),
    (
        "POST",
        "/v1/deadlines",
        {"policy": "standard", "metric": "x", "start": START},
        None,
        422,
        "metric",
    ),
    ("POST", "/v1/deadlines", {**deadline(), "policy": "standard"}, None, 422, "calendar"),
    ("POST", "/v1/deadlines", deadline(metric="first_response"), None, 422, "metric"),
    ("POST", "/v1/deadlines", [deadline()], None, 422, "body"),
    # POST /v1/deadlines/batch
    ("POST", "/v1/deadlines/batch", {"calendar": "smartertools"}, None, 422, "items"),
    ("POST", "/v1/deadlines/batch", {"items": [item()]}, None, 422, "calendar"),
    ("POST", "/v1/deadlines/batch", {"calendar": "mars", "items": []}, None, 422, "calendar"),
    ("POST", "/v1/deadlines/batch", {"calendar": "24x7", "items": {}}, None, 422, "items"),
    ("POST", "/v1/deadlines/batch", {"calendar": "24x7", "items": [5]}, None, 422, "items[0]"),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(), {"duration": "1h"}]},
        None,
        422,
        "items[1].start",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(), item(start="2026-11-20T13:00:00")]},
        None,
        422,
        "items[1].start",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(start=None)]},
        None,
        422,
        "items[0].start",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(duration="4 days")]},
        None,
        422,
        "items[0].duration",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(duration=-1)]},
        None,
        422,
        "items[0].duration",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(x=1)]},
        None,
        422,
        "items[0].x",
    ),
    ("POST", "/v1/deadlines/batch", {"calendar": "24x7", "items": [], "x": 1}, None, 422, "x"),
    ("POST", "/v1/deadlines/batch", [], None, 422, "body"),
    # calendars
    ("GET", "/v1/calendars/mars", None, None, 404, "name"),
    ("GET", "/v1/calendars/mars/intervals", None, None, 404, "name"),
    (
        "GET",
        "/v1/calendars/smartertools/intervals",
        None,
        {"from": "2026-11-20T08:00:00"},
        422,
        "from",
    ),
    ("GET", "/v1/calendars/smartertools/intervals", None, {"from": "soon"}, 422, "from"),
    (
        "GET",
        "/v1/calendars/smartertools/intervals",
        None,
        {"from": "2026-11-20T08:00:00Z", "to": "2026-11-19T08:00:00Z"},
        422,
        "to",
    ),
    (
        "GET",
        "/v1/calendars/smartertools/intervals",
        None,
        {"from": "2026-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"},
        422,
        "to",
    ),
    # POST /v1/tickets
    ("POST", "/v1/tickets", without(TICKET, "id") | {"id": None}, None, 422, "id"),
    ("POST", "/v1/tickets", {**TICKET, "id": 5}, None, 422, "id"),
    ("POST", "/v1/tickets", {**TICKET, "id": "x" * 201}, None, 422, "id"),
    ("POST", "/v1/tickets", {**TICKET, "id": "a/b"}, None, 422, "id"),
    ("POST", "/v1/tickets", {**TICKET, "id": ""}, None, 422, "id"),
    (
        "POST",
        "/v1/tickets",
        without({**TICKET, "id": "N-1"}, "created_at"),
        None,
        422,
        "created_at",
    ),
    (
        "POST",
        "/v1/tickets",
        {**TICKET, "id": "N-1", "created_at": "2026-11-20T13:00"},
        None,
        422,
        "created_at",
    ),
    ("POST", "/v1/tickets", {**TICKET, "id": "N-1", "policy": "platinum"}, None, 422, "policy"),
    ("POST", "/v1/tickets", without({**TICKET, "id": "N-1"}, "policy"), None, 422, "policy"),
    ("POST", "/v1/tickets", {**TICKET, "id": "N-1", "version": [12]}, None, 422, "version"),
    ("POST", "/v1/tickets", {**TICKET, "id": "N-1", "account": ""}, None, 422, "account"),
    ("POST", "/v1/tickets", {**TICKET, "id": "N-1", "priority": "high"}, None, 422, "priority"),
    ("POST", "/v1/tickets", {**TICKET, "policy": "emergency"}, None, 409, "id"),
    # GET /v1/tickets/{id}, events, sla
    ("GET", "/v1/tickets/nope", None, None, 404, "ticket_id"),
    ("POST", "/v1/tickets/nope/events", event(), None, 404, "ticket_id"),
    ("POST", "/v1/tickets/T-1/events", without(event(), "event_id"), None, 422, "event_id"),
    ("POST", "/v1/tickets/T-1/events", event(type="frobnicate"), None, 422, "type"),
    ("POST", "/v1/tickets/T-1/events", without(event(), "type"), None, 422, "type"),
    (
        "POST",
        "/v1/tickets/T-1/events",
        event(occurred_at="2026-11-20T14:00:00"),
        None,
        422,
        "occurred_at",
    ),
    (
        "POST",
        "/v1/tickets/T-1/events",
        event(occurred_at="2026-11-19T14:00:00Z"),
        None,
        422,
        "occurred_at",
    ),
    (
        "POST",
        "/v1/tickets/T-1/events",
        event(type="policy_changed", policy="platinum"),
        None,
        422,
        "policy",
    ),
    ("POST", "/v1/tickets/T-1/events", event(type="policy_changed"), None, 422, "policy"),
    ("POST", "/v1/tickets/T-1/events", event(seq=3), None, 422, "seq"),
    ("POST", "/v1/tickets/T-1/events", event(event_id=""), None, 422, "event_id"),
    ("GET", "/v1/tickets/nope/sla", None, None, 404, "ticket_id"),
    ("GET", "/v1/tickets/T-1/sla", None, {"at": "2026-11-20T14:00:00"}, 422, "at"),
    ("GET", "/v1/tickets/T-1/sla", None, {"at": "yesterday"}, 422, "at"),
    # reports
    ("GET", "/v1/reports/attainment", None, {"from": "2026-11-01"}, 422, "from"),
    (
        "GET",
        "/v1/reports/attainment",
        None,
        {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        422,
        "to",
    ),
    (
        "GET",
        "/v1/reports/attainment",
        None,
        {"from": "2000-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        422,
        "to",
    ),
    ("GET", "/v1/reports/attainment", None, {"policy": "platinum"}, 422, "policy"),
    # instants beyond the supported years (1900-2999): refused before any arithmetic
    ("POST", "/v1/deadlines", deadline(start="0001-01-01T00:00:00+05:00"), None, 422, "start"),
    (
        "POST",
        "/v1/deadlines",
        {"policy": "standard", "start": "9999-12-31T23:59:59-05:00"},
        None,
        422,
        "start",
    ),
    (
        "POST",
        "/v1/deadlines/batch",
        {"calendar": "24x7", "items": [item(), item(start="9999-12-31T23:00:00Z")]},
        None,
        422,
        "items[1].start",
    ),
    (
        "GET",
        "/v1/calendars/smartertools/intervals",
        None,
        {"from": "9999-12-25T00:00:00Z"},
        422,
        "from",
    ),
    ("GET", "/v1/tickets/T-1/sla", None, {"at": "0001-01-01T00:00:00Z"}, 422, "at"),
    ("GET", "/v1/reports/attainment", None, {"to": "0001-01-01T00:00:00+05:00"}, 422, "to"),
    (
        "POST",
        "/v1/tickets",
        {**TICKET, "id": "N-2", "created_at": "9999-12-31T23:00:00Z"},
        None,
        422,
        "created_at",
    ),
    (
        "POST",
        "/v1/tickets/T-1/events",
        event(occurred_at="9999-12-31T23:00:00Z"),
        None,
        422,
        "occurred_at",
    ),
    # routing
    ("GET", "/v1/nothing-here", None, None, 404, "path"),
    ("DELETE", "/v1/tickets/T-1", None, None, 405, "method"),
    ("PUT", "/v1/deadlines", deadline(), None, 405, "method"),
]


def assert_problem(answer: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["field"] == field, body
    assert body["errors"][0]["field"] == field
    assert "Traceback" not in answer.text
    return dict(body)


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "status", "field"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[5]} {i}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_a_problem_naming_the_field(
    api: tuple[httpx.Client, Any],
    method: str,
    path: str,
    body: Any,
    params: dict[str, str] | None,
    status: int,
    field: str,
) -> None:
    client, services = api
    before = row_counts(services)
    answer = client.request(method, path, json=body, params=params)
    assert_problem(answer, status, field)
    assert row_counts(services) == before


RAW_BODIES = [
    ("/v1/deadlines", b'{"calendar": "24x7", "start": '),
    ("/v1/deadlines/batch", b'{"calendar": "24x7", "items": [}'),
    ("/v1/tickets", b"\xff\xfe not json"),
    ("/v1/tickets/T-1/events", b"{'single': 'quotes'}"),
    ("/v1/tickets", b""),
]


@pytest.mark.parametrize(("path", "raw"), RAW_BODIES)
def test_malformed_json_names_the_body(
    api: tuple[httpx.Client, Any], path: str, raw: bytes
) -> None:
    client, services = api
    before = row_counts(services)
    answer = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert_problem(answer, 422, "body")
    assert row_counts(services) == before


@pytest.mark.parametrize("path", ["/v1/deadlines", "/v1/deadlines/batch", "/v1/tickets"])
def test_a_body_not_declared_json_is_415(api: tuple[httpx.Client, Any], path: str) -> None:
    client, _ = api
    body = json.dumps(deadline()).encode()
    answer = client.post(path, content=body, headers={"content-type": "text/plain"})
    assert_problem(answer, 415, "Content-Type")


def test_nan_duration_is_refused(api: tuple[httpx.Client, Any]) -> None:
    client, _ = api
    raw = b'{"calendar": "24x7", "items": [{"start": "2026-11-20T13:00:00Z", "duration": NaN}]}'
    answer = client.post(
        "/v1/deadlines/batch", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(answer, 422, "items[0].duration")


def test_batch_limits(api: tuple[httpx.Client, Any]) -> None:
    client, _ = api
    one = {"start": "2026-11-20T13:00:00Z", "duration": 1}
    too_many = client.post(
        "/v1/deadlines/batch", json={"calendar": "24x7", "items": [one] * 100_001}
    )
    assert_problem(too_many, 422, "items")
    huge = b'{"calendar": "24x7", "items": [' + b'"' + b"x" * (17 * 1024 * 1024) + b'"]}'
    too_big = client.post(
        "/v1/deadlines/batch", content=huge, headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"


def test_problems_on_both_databases(db_url: str) -> None:
    """The write paths leave nothing behind on PostgreSQL as on SQLite."""
    with running_api(db_url) as (client, services):
        assert client.post("/v1/tickets", json=TICKET).status_code == 201
        before = row_counts(services)
        for method, path, body, params, status, field in CASES:
            if method == "POST" and path.startswith("/v1/tickets"):
                answer = client.request(method, path, json=body, params=params)
                assert_problem(answer, status, field)
        assert row_counts(services) == before


def test_a_database_lock_timeout_is_a_retryable_503(pg_url: str) -> None:
    """A busy database is not a bug: 503 + Retry-After, nothing written, and a retry works."""
    import sqlalchemy as sa

    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = conn.execute(sa.text("select current_database()")).scalar_one()
        conn.execute(sa.text(f"ALTER DATABASE \"{name}\" SET lock_timeout = '300ms'"))
    admin.dispose()
    with running_api(pg_url) as (client, services):
        assert client.post("/v1/tickets", json=TICKET).status_code == 201
        holder = sa.create_engine(pg_url)
        try:
            with holder.begin() as conn:
                conn.execute(sa.text("SELECT id FROM tickets WHERE id = 'T-1' FOR UPDATE"))
                before = row_counts(services)
                answer = client.post("/v1/tickets/T-1/events", json=event(event_id="locked"))
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["retry-after"] == "1"
                assert row_counts(services) == before
        finally:
            holder.dispose()
        retry = client.post("/v1/tickets/T-1/events", json=event(event_id="locked"))
        assert retry.status_code == 201, retry.text
