"""Import lines: the fast reading of the usual shapes gives what the API's request models
give, and every refusal names the field as the API's 422 problem would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.credits.ledger import expiry_of
from sla_engine.ingest import jsonl
from sla_engine.ingest.exporter import instant_text
from sla_engine.ingest.jsonl import (
    EventLine,
    GrantLine,
    LineError,
    SubscriptionLine,
    TicketLine,
    parse_line,
)


def _slow(text: str) -> jsonl.Line:
    """The line read through the request models only."""
    obj = json.loads(text)
    kind = obj.pop("kind")
    fast = jsonl._FAST.pop(kind)
    try:
        return jsonl.parse_object({"kind": kind, **obj})
    finally:
        jsonl._FAST[kind] = fast


USUAL = [
    '{"kind":"event","ticket_id":"T-1","event_id":"e1","type":"agent_reply",'
    '"occurred_at":"2025-03-04T17:22:10+00:00"}',
    '{"kind":"event","ticket_id":"T-1","event_id":"e2","type":"policy_changed",'
    '"occurred_at":"2025-03-04T17:22:10.5-07:00","policy":"emergency","note":{"a":[1,2]}}',
    '{"kind":"event","ticket_id":"T-1","event_id":"e3","type":"solved",'
    '"occurred_at":"2025-03-04T17:22Z"}',
    '{"kind":"ticket","id":"T-1","policy":"standard","created_at":"2025-03-04T09:00:00-07:00"}',
    '{"kind":"ticket","id":"T-2","policy":"emergency","created_at":"2025-03-04T09:00:00Z",'
    '"account":"acme","product":"SmarterMail","version":12}',
    '{"kind":"ticket","id":"T-3","policy":"standard","created_at":"2025-03-04T09:00:00Z",'
    '"version":"16.2"}',
    '{"kind":"ticket","id":"T-4","policy":"standard","created_at":"2025-03-04T09:00:00Z",'
    '"calendar":"example-sydney"}',
]


@pytest.mark.parametrize("text", USUAL)
def test_the_fast_reading_equals_the_request_models(text: str) -> None:
    fast, slow = parse_line(text), _slow(text)
    assert fast == slow
    instant = getattr(getattr(fast, "request", None), "occurred_at", None) or getattr(
        fast.request,
        "created_at",
        None,  # type: ignore[union-attr]
    )
    assert isinstance(instant.tzinfo, timezone)  # not pydantic's: comparisons stay cheap


def _event(**fields: object) -> str:
    body = {"kind": "event", "ticket_id": "T", "event_id": "e", "type": "x"}
    return json.dumps({**body, "occurred_at": "2025-03-04T09:00Z", **fields})


def _ticket(**fields: object) -> str:
    body = {"kind": "ticket", "id": "T", "policy": "standard"}
    return json.dumps({**body, "created_at": "2025-03-04T09:00Z", **fields})


GRANT = '{"kind":"grant","account":"a","occurred_at":"2025-03-04T09:00Z",'
UNUSUAL = [
    # refused, each naming its field
    (_event(occurred_at="2025-03-04T09:00:00"), "occurred_at: needs a UTC offset"),
    (_event(event_id=""), "event_id:"),
    (_event(ticket_id=None), "ticket_id: field required"),
    (_event(ticket_id="a/b"), "ticket_id:"),
    (_event(occurred_at="3025-03-04T09:00Z"), "occurred_at: is out of the supported range"),
    (_ticket(colour=1), "colour: unknown field"),
    (_ticket(policy=None), "policy:"),
    (_ticket(version=True), "version:"),
    (GRANT + '"type":"gift"}', "type:"),
    (GRANT + '"type":"renewal","kind2":1}', "kind2: unknown field"),
    ('{"kind":"subscription","account":"a","start":"2025-03-04"}', "start:"),
    ('{"kind":"shipment"}', "kind: must be one of ticket, event, grant, subscription"),
    ("[]", "body: a line must be a JSON object"),
    ("{", "body: malformed JSON"),
]


@pytest.mark.parametrize(("text", "error"), UNUSUAL)
def test_refusals_name_the_field(text: str, error: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_line(text)
    assert caught.value.message.startswith(error), caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        _event(note=float("nan")),  # NaN: the standard library reads it, as the API does
        _event(count=2**70),  # an integer past 64 bits
        '{"kind":"event","ticket_id":"T","event_id":"e","type":"x",'
        '"occurred_at":"2025-03-04T09:00Z","note":"\\ud800"}',  # a lone surrogate
        "\ufeff" + _event(),  # a byte order mark: refused by both, worded by json
        '{"kind":"event", "ticket_id":}',
    ],
)
def test_lines_orjson_refuses_read_as_json_reads_them(text: str) -> None:
    try:
        expected: object = jsonl.parse_object(json.loads(text))
    except ValueError as exc:
        expected = f"body: malformed JSON: {exc}"
    try:
        got: object = parse_line(text)
    except LineError as exc:
        got = exc.message
    assert got == expected


def test_unusual_but_valid_forms_go_through_the_models() -> None:
    line = parse_line(
        '{"kind":"event","ticket_id":"T","event_id":"e","type":"open",'
        '"occurred_at":"2025-03-04T09:00:00.1234567+05:30"}'
    )
    assert isinstance(line, EventLine)
    assert line.request.occurred_at.utcoffset() == timedelta(hours=5, minutes=30)


def test_grant_and_subscription_lines() -> None:
    grant = parse_line(
        '{"kind":"grant","account":"acme","type":"ticket_purchase","quantity":10,'
        '"price_per_ticket":"19.50","package":"10-pack","occurred_at":"2025-01-02T00:00:00Z"}'
    )
    assert grant == GrantLine(
        "acme",
        "ticket_purchase",
        datetime(2025, 1, 2, tzinfo=UTC),
        10,
        Decimal("19.50"),
        "10-pack",
    )
    sub = parse_line('{"kind":"subscription","account":"acme","start":"2025-01-02T00:00:00Z"}')
    assert sub == SubscriptionLine("acme", "hosted", datetime(2025, 1, 2, tzinfo=UTC), None)


def test_a_ticket_line_is_the_ticket_request() -> None:
    line = parse_line(USUAL[4])
    assert isinstance(line, TicketLine)
    assert line.request.version == "12" and line.request.account == "acme"


@settings(max_examples=200, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1901, 1, 1), max_value=datetime(2998, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=-14 * 4, max_value=14 * 4).map(lambda q: q * 15),
)
def test_exported_instants_keep_the_expiry_of_their_credit(instant: datetime, minutes: int) -> None:
    """A purchase made at some offset expires 12 months later in that offset; the export
    writes the instant in an offset giving the same expiry."""
    local = instant.astimezone(timezone(timedelta(minutes=minutes)))
    expiry = expiry_of(local)
    text = instant_text(instant, expiry)
    assert datetime.fromisoformat(text) == instant
    assert expiry_of(datetime.fromisoformat(text)) == expiry


@pytest.mark.parametrize(
    "instant",
    [
        "1900-01-01T00:30:00+01:00",  # 1899-12-31T23:30Z: before the range
        "1900-01-01T00:30:00-01:00",
        "1901-06-01T00:00:00Z",
        "2998-06-01T00:00:00Z",
        "2999-12-31T22:30:00-01:00",
        "2999-12-31T23:30:00-01:00",  # 3000-01-01T00:30Z: after it
    ],
)
def test_instants_near_the_range_ends_read_as_the_models_read_them(instant: str) -> None:
    text = _event(occurred_at=instant)
    try:
        slow: object = _slow(text)
    except LineError as exc:
        slow = exc.message
    try:
        fast: object = parse_line(text)
    except LineError as exc:
        fast = exc.message
    assert fast == slow
