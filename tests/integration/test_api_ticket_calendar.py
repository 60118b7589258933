"""A ticket's own calendar over HTTP: `calendar` on creation, `calendar_changed`, and the
follow-the-sun example of docs/SERVICE.md (Berlin -> Sydney) step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.api import row_counts, running_api

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # Tuesday 11:00 in Sydney


def test_follow_the_sun_over_http(db_url: str) -> None:
    with running_api(db_url, clock=lambda: NOW) as (client, _):
        created = client.post(
            "/v1/tickets",
            json={
                "id": "FTS-1",
                "policy": "standard",
                "created_at": "2026-11-23T09:00:00+01:00",
                "calendar": "example-berlin",
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["calendar"] == "example-berlin"
        moved = client.post(
            "/v1/tickets/FTS-1/events",
            json={
                "event_id": "move-1",
                "type": "calendar_changed",
                "occurred_at": "2026-11-23T12:00:00+01:00",
                "calendar": "example-sydney",
            },
        )
        assert moved.status_code == 201, moved.text
        body = client.get("/v1/tickets/FTS-1").json()
        assert body["calendar"] == "example-sydney"
        fr = body["sla"]["metrics"]["first_response"]
        # 3 hours in Berlin (09:00-12:00), then Sydney opens at 09:00 (22:00 UTC): the 4th
        # hour runs out at 10:00 Sydney time, before NOW (11:00 Sydney)
        assert fr["status"] == "breached"
        assert fr["breach_at"] == "2026-11-24T10:00:00+11:00"
        assert fr["business_elapsed_s"] == 5 * 3600.0
        at = client.get("/v1/tickets/FTS-1/sla", params={"at": "2026-11-24T09:30:00+11:00"})
        early = at.json()["metrics"]["first_response"]
        assert (early["status"], early["business_elapsed_s"]) == ("active", 3.5 * 3600)


def test_unknown_calendar_is_422_naming_calendar_and_writes_nothing(db_url: str) -> None:
    with running_api(db_url, clock=lambda: NOW) as (client, services):
        before = row_counts(services)
        answer = client.post(
            "/v1/tickets",
            json={
                "id": "X-1",
                "policy": "standard",
                "created_at": "2026-11-23T09:00:00+01:00",
                "calendar": "atlantis",
            },
        )
        assert answer.status_code == 422
        assert "calendar" in answer.text and "atlantis" in answer.text
        assert row_counts(services) == before

        client.post(
            "/v1/tickets",
            json={"id": "X-2", "policy": "standard", "created_at": "2026-11-23T09:00:00+01:00"},
        ).raise_for_status()
        before = row_counts(services)
        answer = client.post(
            "/v1/tickets/X-2/events",
            json={
                "event_id": "m",
                "type": "calendar_changed",
                "occurred_at": "2026-11-23T10:00:00+01:00",
                "calendar": "atlantis",
            },
        )
        assert answer.status_code == 422 and "calendar" in answer.text
        assert row_counts(services) == before
        missing = client.post(
            "/v1/tickets/X-2/events",
            json={
                "event_id": "m",
                "type": "calendar_changed",
                "occurred_at": "2026-11-23T10:00:00Z",
            },
        )
        assert missing.status_code == 422 and "calendar" in missing.text
        assert client.get("/v1/tickets/X-2").json()["calendar"] is None


def test_same_ticket_with_another_calendar_is_a_conflict(sqlite_url: str) -> None:
    with running_api(sqlite_url, clock=lambda: NOW) as (client, _):
        body = {
            "id": "C-1",
            "policy": "emergency",
            "created_at": "2026-11-23T09:00:00+01:00",
            "calendar": "example-berlin",
        }
        first = client.post("/v1/tickets", json=body)
        assert first.status_code == 201
        # the emergency first response stays 24x7 (fixed_calendar): 1 hour, in UTC
        fr = first.json()["sla"]["metrics"]["first_response"]
        assert fr["breach_at"] == "2026-11-23T09:00:00+00:00"
        assert client.post("/v1/tickets", json=body).status_code == 200
        other = client.post("/v1/tickets", json={**body, "calendar": "example-sydney"})
        assert other.status_code == 409
