"""`POST /v1/batch`: each item answered as its single call, nothing of a failed item written,
the same rows as the same requests sent one by one (tickets, metric rows, timers, outbox rows,
ledger entries), and the limits (10,000 items, 16 MiB) as a 413 problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla_engine.ingest.jsonl import EventLine, GrantLine, SubscriptionLine, TicketLine, parse_line
from tests.support.ingest import (
    differences,
    generated_lines,
    second_database,
    serving,
    snapshot,
    write_config,
)

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


def _workload() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Credit lines (posted singly in both runs), ticket bodies and event bodies."""
    credits, tickets, events = [], [], []
    for text in generated_lines(50, seed=11):
        line = parse_line(text)
        body = {k: v for k, v in json.loads(text).items() if k != "kind"}
        if isinstance(line, GrantLine | SubscriptionLine):
            credits.append(json.loads(text))
        elif isinstance(line, TicketLine):
            tickets.append(body)
        elif isinstance(line, EventLine):
            events.append(body)
    t0 = "2025-11-20T08:00:00-07:00"
    tickets += [
        {"id": "B-1", "policy": "standard", "created_at": t0},
        {"id": "B-1", "policy": "standard", "created_at": t0},  # 200: the same again
        {"id": "B-1", "policy": "emergency", "created_at": t0},  # 409
        {"id": "B-2", "policy": "standard", "created_at": "2025-11-20T08:00:00"},  # 422
        {"id": "B-3", "policy": "standard", "created_at": t0, "account": "broke"},  # 402
        {"id": "B-4", "policy": "gold", "created_at": t0},  # 422: unknown policy
        "not an object",
    ]
    events += [
        {"ticket_id": "B-1", "event_id": "r1", "type": "customer_reply", "occurred_at": t0},
        {"ticket_id": "B-1", "event_id": "r1", "type": "customer_reply", "occurred_at": t0},
        {"ticket_id": "B-3", "event_id": "x", "type": "agent_reply", "occurred_at": t0},  # 404
        {"ticket_id": "B-1", "event_id": "y", "type": "nope", "occurred_at": t0},  # 422
        {"event_id": "z", "type": "agent_reply", "occurred_at": t0},  # 422: no ticket_id
        {"ticket_id": "B-1", "event_id": "p", "type": "pending", "occurred_at": "2025-11-20"},
    ]
    return credits, tickets, events


def _post_credits(client: httpx.Client, credits: list[dict[str, Any]]) -> None:
    for line in credits:
        body = {k: v for k, v in line.items() if k not in ("kind", "account", "type")}
        body["kind"] = line.get("type", "hosted")
        path = "grants" if line["kind"] == "grant" else "subscriptions"
        answer = client.post(f"/v1/accounts/{line['account']}/{path}", json=body)
        assert answer.status_code == 201, answer.text


def _single(client: httpx.Client, tickets: list[Any], events: list[Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"tickets": [], "events": []}
    for body in tickets:
        answer = client.post("/v1/tickets", json=body)
        results["tickets"].append(_result(answer))
    for body in events:
        ticket_id = body.get("ticket_id", "") if isinstance(body, dict) else ""
        rest = {k: v for k, v in body.items() if k != "ticket_id"}
        if not ticket_id:  # no single call: the id is in its URL
            results["events"].append({"status": 422, "no_single_call": True})
            continue
        answer = client.post(f"/v1/tickets/{ticket_id}/events", json=rest)
        results["events"].append(_result(answer))
    return results


def _result(answer: httpx.Response) -> dict[str, Any]:
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == PROBLEM
        return {"status": answer.status_code, "problem": answer.json()}
    return {"status": answer.status_code}


def _batched(client: httpx.Client, tickets: list[Any], events: list[Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"tickets": [], "events": []}
    for start in range(0, len(tickets), 40):  # several requests, tickets first
        answer = client.post("/v1/batch", json={"tickets": tickets[start : start + 40]})
        assert answer.status_code == 200, answer.text
        results["tickets"] += answer.json()["tickets"]
    for start in range(0, len(events), 150):
        answer = client.post("/v1/batch", json={"events": events[start : start + 150]})
        assert answer.status_code == 200, answer.text
        results["events"] += answer.json()["events"]
    return results


def test_batch_equals_single_calls(db_url: str, tmp_path: Path, request) -> None:
    credits, tickets, events = _workload()
    other = second_database(db_url, tmp_path, request)
    with serving(write_config(tmp_path / "single", other)) as (client, _):
        _post_credits(client, credits)
        single = _single(client, tickets, events)
    with serving(write_config(tmp_path / "batch", db_url)) as (client, _):
        _post_credits(client, credits)
        batched = _batched(client, tickets, events)

    assert [r["status"] for r in batched["tickets"]] == [r["status"] for r in single["tickets"]]
    assert [r["status"] for r in batched["events"]] == [r["status"] for r in single["events"]]
    for got, want in zip(
        batched["tickets"] + batched["events"], single["tickets"] + single["events"], strict=True
    ):
        if "no_single_call" in want:
            continue
        if "problem" in want:
            assert got["problem"] == want["problem"]
        else:
            assert "problem" not in got
    statuses = {r["status"] for r in batched["tickets"] + batched["events"]}
    assert {200, 201, 402, 404, 409, 422} <= statuses
    assert batched["tickets"][-3]["id"] == "B-3" and batched["tickets"][-1]["id"] is None
    assert batched["events"][-2] == {
        "ticket_id": None,
        "event_id": "z",
        "status": 422,
        "problem": batched["events"][-2]["problem"],
    }

    bulk, one_by_one = snapshot(db_url), snapshot(other)
    assert differences(bulk, one_by_one) == []
    assert bulk["timers"] and bulk["ledger"] and bulk["metrics"]
    assert "B-3" not in bulk["tickets"] and "broke" not in bulk["ledger"]


def test_batch_limits_and_shape(sqlite_url: str, tmp_path: Path) -> None:
    with serving(write_config(tmp_path, sqlite_url)) as (client, _):
        item = {"id": "T", "policy": "standard", "created_at": "2025-11-20T08:00:00Z"}
        too_many = client.post(
            "/v1/batch", json={"tickets": [item] * 5_001, "events": [{}] * 5_000}
        )
        assert too_many.status_code == 413
        assert too_many.headers["content-type"] == PROBLEM
        assert "10,000" in too_many.json()["detail"]

        huge = b'{"tickets": [' + b'"x",' * (5 * 1024 * 1024) + b'"x"]}'
        answer = client.post(
            "/v1/batch", content=huge, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413

        for body, field in (
            ([], "body"),
            ({"tickets": {}}, "tickets"),
            ({"tickets": [], "extra": 1}, "extra"),
        ):
            answer = client.post("/v1/batch", json=body)
            assert answer.status_code == 422, body
            assert answer.json()["field"] == field
        answer = client.post(
            "/v1/batch", content=b"{", headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422 and answer.json()["field"] == "body"
        answer = client.post("/v1/batch", content=b"{}", headers={"content-type": "text/plain"})
        assert answer.status_code == 415

        assert client.post("/v1/batch", json={}).json() == {"tickets": [], "events": []}
        exactly = client.post("/v1/batch", json={"tickets": [item] * 10_000})
        assert exactly.status_code == 200
        assert [r["status"] for r in exactly.json()["tickets"][:2]] == [201, 200]


def test_batch_is_declared_in_openapi(sqlite_url: str, tmp_path: Path) -> None:
    with serving(write_config(tmp_path, sqlite_url)) as (client, _):
        operation = client.get("/openapi.json").json()["paths"]["/v1/batch"]["post"]
    assert {"200", "401", "413", "415", "422", "503"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"tickets", "events"} <= set(body["properties"])
    assert operation["responses"]["413"]["content"]["application/problem+json"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok


@pytest.mark.parametrize("slice_size", [1, 7])
def test_a_failed_item_leaves_nothing_and_slices_do_not_matter(
    sqlite_url: str, tmp_path: Path, slice_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sla_engine.ingest import batch

    monkeypatch.setattr(batch, "SLICE", slice_size)
    with serving(write_config(tmp_path, sqlite_url)) as (client, svc):
        answer = client.post(
            "/v1/batch",
            json={
                "tickets": [
                    {
                        "id": f"S-{i}",
                        "policy": "standard",
                        "created_at": "2025-11-20T08:00:00Z",
                        **({"account": "nobody"} if i % 3 == 0 else {}),
                    }
                    for i in range(10)
                ]
            },
        ).json()
        statuses = [r["status"] for r in answer["tickets"]]
        assert statuses == [402 if i % 3 == 0 else 201 for i in range(10)]
        stored = snapshot(svc.config.database_url)
        assert sorted(stored["tickets"]) == sorted(f"S-{i}" for i in range(10) if i % 3)
        assert stored["ledger"] == {}
