"""Bad input on every endpoint: a 4xx problem+json naming the field, and nothing written."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sla_engine.api import create_app
from sla_engine.composition import build_services
from sla_engine.config import load_config
from tests.support.api import row_counts, running_api
from tests.support.server import serve_app

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
START = "2026-11-20T13:00:00-07:00"
TICKET = {"id": "T-1", "policy": "standard", "created_at": START}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api-errors') / 'sla.db'}"
    services = build_services(load_config(None, env={}, database_url=url), clock=lambda: NOW)
    try:
        with (
            serve_app(create_app(services, api_token="")) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
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


def json_operations(client: httpx.Client) -> list[tuple[str, str]]:
    """(method, path) of every operation taking a JSON body, path parameters filled in."""
    found = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if any("json" in media for media in content):
                filled = path.replace("{ticket_id}", "T-1").replace("{name}", "smartertools")
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "x", filled)))
    return found


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_4xx_on_every_route(
    api: tuple[httpx.Client, Any], depth: int
) -> None:
    """Python's JSON parser recurses: a deep document must be refused, never a 500."""
    client, services = api
    operations = json_operations(client)
    assert ("POST", "/v1/deadlines/batch") in operations and len(operations) >= 5
    before = row_counts(services)
    for value in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        for key in ("items", "id", "event_id"):
            raw = f'{{"calendar": "24x7", "{key}": {value}}}'
            for method, path in operations:
                answer = client.request(
                    method, path, content=raw, headers={"content-type": "application/json"}
                )
                assert 400 <= answer.status_code < 500, (method, path, answer.text[:300])
                assert answer.headers["content-type"] == "application/problem+json"
    assert row_counts(services) == before


BODY_ROUTES = [
    ("/v1/tickets", 1024 * 1024),
    ("/v1/accounts/acme/grants", 1024 * 1024),
    ("/v1/accounts/acme/subscriptions", 1024 * 1024),
    ("/v1/tickets/T-1/events", 256 * 1024),
    ("/v1/deadlines", 64 * 1024),
    ("/v1/deadlines/batch", 16 * 1024 * 1024),
]
HUGE = 66 * 1024 * 1024


def stream_body(base: str, path: str, *, announce: bool) -> tuple[int, bytes, float]:
    """POST up to 66 MB to `path` over a raw socket, chunk by chunk, until the server answers;
    (bytes sent, the answer, seconds). `announce` sends a Content-Length, else chunked."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(30)
    framing = f"Content-Length: {HUGE}" if announce else "Transfer-Encoding: chunked"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n".encode()
    )
    chunk = b'{"id": "' + b"x" * (64 * 1024)
    frame = chunk if announce else b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent, answer, began = 0, b"", time.monotonic()
    try:
        while sent < HUGE:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(frame)
            sent += len(chunk)
    except OSError:  # the server answered and closed while we were still sending
        pass
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except OSError:
        pass
    sock.close()
    return sent, answer, time.monotonic() - began


@pytest.mark.parametrize("announce", [False, True], ids=["chunked", "content-length"])
@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_a_body_over_the_limit_is_cut_off_with_413(
    api: tuple[httpx.Client, Any], path: str, limit: int, announce: bool
) -> None:
    """Every route caps its body: the answer comes once the cap is passed (or announced), not
    after reading 66 MB, and it is a problem."""
    client, services = api
    before = row_counts(services)
    sent, answer, seconds = stream_body(str(client.base_url).rstrip("/"), path, announce=announce)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 413 and str(limit) in problem["detail"]
    # Socket buffers hold a few MB in flight; the server stopped reading long before 66 MB.
    assert sent < limit + 8 * 1024 * 1024, (sent, limit)
    assert seconds < 10
    assert row_counts(services) == before
    assert client.get("/healthz").status_code == 200


def test_limits_are_declared_in_the_openapi_document(api: tuple[httpx.Client, Any]) -> None:
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    for path, limit in BODY_ROUTES:
        template = path.replace("acme", "{account}").replace("T-1", "{ticket_id}")
        operation = paths[template]["post"]
        assert operation["x-body-limit"] == limit, path
        assert "413" in operation["responses"]


def test_the_event_route_is_tried_first_and_documented_once(
    api: tuple[httpx.Client, Any],
) -> None:
    """The tickets router tries the event route first (its hot route), and the document lists
    it once."""
    from sla_engine.api.routes_tickets import router

    first = router.routes[0]
    assert getattr(first, "path", None) == "/tickets/{ticket_id}/events"
    assert getattr(first, "methods", None) == {"POST"}
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert list(paths).count("/v1/tickets/{ticket_id}/events") == 1
    assert list(paths["/v1/tickets/{ticket_id}/events"]) == ["post"]


def test_a_long_url_is_a_414_problem(api: tuple[httpx.Client, Any]) -> None:
    client, _ = api
    for url in ("/v1/tickets/" + "a" * 9000, "/v1/calendars?x=" + "b" * 9000):
        answer = client.get(url)
        body = assert_problem(answer, 414, "path")
        assert len(answer.content) < 1000, body


def test_an_unknown_id_is_echoed_once_and_shortened(api: tuple[httpx.Client, Any]) -> None:
    client, _ = api
    ticket_id = "q" * 8000
    answer = client.get(f"/v1/tickets/{ticket_id}")
    body = assert_problem(answer, 404, "ticket_id")
    assert len(answer.content) < 1000
    assert len(re.findall("q{40,}", answer.text)) == 1, body
    assert body["errors"][0]["value"].startswith("q" * 200)
    short = client.get("/v1/tickets/nope").json()
    assert "'nope'" in short["detail"] and short["errors"][0]["value"] == "nope"


def test_one_title_per_problem_type_and_no_python_in_details(
    api: tuple[httpx.Client, Any],
) -> None:
    client, _ = api
    titles: dict[str, set[str]] = {}
    for method, path, body, params, _status, _field in CASES:
        problem = client.request(method, path, json=body, params=params).json()
        titles.setdefault(problem["type"], set()).add(problem["title"])
        assert "(got None)" not in problem["detail"], problem
        assert "Traceback" not in problem["detail"]
    assert titles["urn:sla-engine:problem:invalid-input"] == {"Invalid input"}
    assert all(len(each) == 1 for each in titles.values()), titles


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(sqlite_url: str, scheme: str) -> None:
    with running_api(sqlite_url, token="s3cret") as (client, _):
        ok = client.get("/v1/calendars", headers={"Authorization": f"{scheme} s3cret"})
        assert ok.status_code == 200, ok.text
        wrong = client.get("/v1/calendars", headers={"Authorization": f"{scheme} nope"})
        assert_problem(wrong, 401, "Authorization")
        basic = client.get("/v1/calendars", headers={"Authorization": "Basic s3cret"})
        assert_problem(basic, 401, "Authorization")
