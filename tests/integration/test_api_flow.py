"""The HTTP API's happy paths against a real uvicorn server, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sla_engine.core.calendar import load_calendar
from tests.support.api import row_counts, running_api

SERVICE_DOC = Path(__file__).resolve().parents[2] / "README.md"


def curl_session(doc: Path) -> list[tuple[str, str, str | None]]:
    """(method, path, body) of each curl command in the doc's first `export SLA=` block."""
    text = doc.read_text()
    block = re.search(r"```sh\nexport SLA=.*?```", text, re.S)
    assert block, f"no curl session in {doc}"
    commands = block.group(0).replace("\\\n", " ").splitlines()
    steps = []
    for line in commands:
        if not line.startswith("curl "):
            continue
        args = shlex.split(line)
        method = args[args.index("-X") + 1] if "-X" in args else "GET"
        url = next(a for a in args if a.startswith("$SLA"))
        body = args[args.index("-d") + 1] if "-d" in args else None
        steps.append((method, url.removeprefix("$SLA"), body))
    return steps


def test_readme_curl_session_literally(db_url: str) -> None:
    steps = curl_session(SERVICE_DOC)
    assert [s[0] for s in steps] == ["POST", "POST", "GET", "GET", "POST", "GET"]
    with running_api(db_url) as (client, services):
        answers = [
            client.request(method, path, content=body, headers={"content-type": "application/json"})
            for method, path, body in steps
        ]
        assert [a.status_code for a in answers] == [201, 201, 200, 200, 200, 200], [
            a.text for a in answers
        ]
        created, reply, sla_now, sla_then, deadline, report = (a.json() for a in answers)
        first = created["sla"]["metrics"]["first_response"]
        assert first["breach_at"] == "2026-11-23T08:00:00-07:00"
        assert first["target_at"] == "2026-11-20T14:00:00-07:00"
        assert reply["duplicate"] is False
        done = sla_now["metrics"]["first_response"]
        assert done["status"] == "achieved"
        assert done["stopped_at"] == "2026-11-20T13:45:00-07:00"
        assert done["business_elapsed_s"] == 2700.0
        running = sla_then["metrics"]["first_response"]
        assert running["status"] == "active"
        assert running["business_elapsed_s"] == 1800.0
        assert running["business_remaining_s"] == 12600.0
        assert deadline["deadline"] == "2026-11-23T08:00:00-07:00"
        assert report["count"] == 1
        assert report["within_target"] == {"achieved": 1, "decided": 1, "share": 1.0}
        assert report["within_breach"]["share"] == 1.0
        assert report["median_response_s"] == 2700.0

        # Retries are idempotent; a different ticket under a used id is a conflict.
        _, path, body = steps[0]
        again = client.post(path, content=body, headers={"content-type": "application/json"})
        assert again.status_code == 200
        counts = row_counts(services)
        repeat = client.post(
            steps[1][1], content=steps[1][2], headers={"content-type": "application/json"}
        )
        assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
        clash = client.post(
            "/v1/tickets",
            json={"id": "T-1", "policy": "emergency", "created_at": "2026-11-20T13:00:00-07:00"},
        )
        assert clash.status_code == 409
        assert clash.headers["content-type"] == "application/problem+json"
        assert clash.json()["field"] == "id"
        assert row_counts(services) == counts

        ticket = client.get("/v1/tickets/T-1").json()
        assert [e["event_id"] for e in ticket["events"]] == ["e-1"]
        assert ticket["sla"]["metrics"]["first_response"]["status"] == "achieved"


def test_emergency_ticket_and_policy_change(db_url: str) -> None:
    with running_api(db_url) as (client, _):
        made = client.post(
            "/v1/tickets",
            json={"id": "E-1", "policy": "emergency", "created_at": "2026-11-21T02:00:00Z"},
        )
        assert made.status_code == 201, made.text
        first = made.json()["sla"]["metrics"]["first_response"]
        assert first["breach_at"].startswith("2026-11-21T03:00:00")  # 24x7: one real hour
        changed = client.post(
            "/v1/tickets/E-1/events",
            json={
                "event_id": "p1",
                "type": "policy_changed",
                "occurred_at": "2026-11-21T02:10:00Z",
                "policy": "standard",
            },
        )
        assert changed.status_code == 201, changed.text
        assert changed.json()["event"]["policy"] == "standard"
        state = client.get("/v1/tickets/E-1/sla", params={"at": "2026-11-21T02:30:00Z"}).json()
        assert state["policy"] == "standard"


def test_deadlines_single_policy_and_batch(sqlite_url: str) -> None:
    with running_api(sqlite_url) as (client, _):
        by_policy = client.post(
            "/v1/deadlines",
            json={
                "policy": "standard",
                "metric": "first_response",
                "start": "2026-11-20T15:00:00-07:00",
            },
        ).json()
        assert by_policy["deadline"] == "2026-11-23T10:00:00-07:00"
        assert by_policy["target"] == "2026-11-20T16:00:00-07:00"
        seconds = client.post(
            "/v1/deadlines",
            json={"calendar": "24x7", "start": "2026-11-20T15:00:00-07:00", "duration": 5400},
        ).json()
        assert seconds["deadline"] == "2026-11-20T23:30:00+00:00"
        empty = client.post("/v1/deadlines/batch", json={"calendar": "24x7", "items": []})
        assert empty.status_code == 200 and empty.json()["deadlines"] == []


@pytest.mark.parametrize(
    "calendar", ["smartertools", "example-lunch-break", "example-overnight-shift"]
)
def test_batch_equals_scalar_add_across_dst(sqlite_url: str, calendar: str) -> None:
    """The vectorised path (parse, add_many, per-hour offsets) answers what `add` + isoformat do."""
    cal = load_calendar(calendar)
    rng = random.Random(7)
    zones = [ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kathmandu")]
    base = datetime(2026, 3, 1, tzinfo=UTC)
    items, expected = [], []
    for _ in range(400):
        start = (base + timedelta(seconds=rng.randrange(0, 300 * 86400))).astimezone(
            rng.choice(zones)
        )
        start += timedelta(microseconds=rng.choice([0, 0, 123456]))
        duration = rng.choice(["0s", "45s", "4h", "1h30m", "400h", 0.5, 7200])
        seconds = duration if isinstance(duration, int | float) else None
        delta = (
            timedelta(seconds=seconds)
            if seconds is not None
            else {
                "0s": timedelta(0),
                "45s": timedelta(seconds=45),
                "4h": timedelta(hours=4),
                "1h30m": timedelta(minutes=90),
                "400h": timedelta(hours=400),
            }[str(duration)]
        )
        items.append({"start": start.isoformat(), "duration": duration})
        expected.append(cal.add(start, delta).astimezone(cal.tz).isoformat())
    with running_api(sqlite_url) as (client, _):
        answer = client.post("/v1/deadlines/batch", json={"calendar": calendar, "items": items})
        assert answer.status_code == 200, answer.text
        assert answer.json()["deadlines"] == expected
        singles = [
            client.post("/v1/deadlines", json={"calendar": calendar, **item}).json()["deadline"]
            for item in items[:25]
        ]
        assert singles == expected[:25]


def test_calendars(sqlite_url: str) -> None:
    with running_api(sqlite_url) as (client, _):
        listed = client.get("/v1/calendars").json()["calendars"]
        names = {c["name"]: c for c in listed}
        assert names["smartertools"]["timezone"] == "America/Phoenix"
        assert "24x7" in names
        shown = client.get("/v1/calendars/smartertools").json()
        assert shown["title"] == "SmarterTools support hours"
        assert shown["definition"]["timezone"] == "America/Phoenix"
        assert shown["open_now"] is False  # NOW is 05:00 in Phoenix
        assert shown["next_open"] == "2026-11-25T08:00:00-07:00"
        spans = client.get(
            "/v1/calendars/smartertools/intervals",
            params={"from": "2026-11-20T12:00:00-07:00", "to": "2026-11-27T12:00:00-07:00"},
        ).json()["intervals"]
        assert spans == [
            {"start": "2026-11-20T12:00:00-07:00", "end": "2026-11-20T17:00:00-07:00"},
            {"start": "2026-11-23T08:00:00-07:00", "end": "2026-11-23T17:00:00-07:00"},
            {"start": "2026-11-24T08:00:00-07:00", "end": "2026-11-24T17:00:00-07:00"},
            {"start": "2026-11-25T08:00:00-07:00", "end": "2026-11-25T17:00:00-07:00"},
            # Thanksgiving (26th) is a holiday
            {"start": "2026-11-27T08:00:00-07:00", "end": "2026-11-27T12:00:00-07:00"},
        ]
        default = client.get("/v1/calendars/24x7/intervals").json()
        assert default["intervals"] == [
            {"start": "2026-11-25T12:00:00+00:00", "end": "2026-12-02T12:00:00+00:00"}
        ]


def test_report_counts_running_and_breached_tickets(db_url: str) -> None:
    with running_api(db_url) as (client, _):

        def ticket(tid: str, created: str) -> None:
            body = {"id": tid, "policy": "standard", "created_at": created}
            r = client.post("/v1/tickets", json=body)
            assert r.status_code == 201, r.text

        def reply(tid: str, at: str) -> None:
            r = client.post(
                f"/v1/tickets/{tid}/events",
                json={"event_id": f"{tid}-r", "type": "agent_reply", "occurred_at": at},
            )
            assert r.status_code == 201, r.text

        ticket("A", "2026-11-23T09:00:00-07:00")
        reply("A", "2026-11-23T09:30:00-07:00")  # within target
        ticket("B", "2026-11-23T09:00:00-07:00")
        reply("B", "2026-11-23T11:00:00-07:00")  # after target, within breach
        ticket("C", "2026-11-23T09:00:00-07:00")
        reply("C", "2026-11-23T15:00:00-07:00")  # breached
        ticket("D", "2026-11-23T09:00:00-07:00")  # never answered: breached by NOW
        ticket("E", "2026-11-25T04:00:00-07:00")  # not answered, inside its budget at NOW
        ticket("OLD", "2026-10-01T09:00:00-07:00")  # outside the window
        report = client.get(
            "/v1/reports/attainment",
            params={
                "from": "2026-11-01T00:00:00Z",
                "to": "2026-12-01T00:00:00Z",
                "policy": "standard",
            },
        ).json()
        assert report["count"] == 5
        assert report["answered"] == 3
        assert report["open"] == 1
        assert report["within_target"] == {"achieved": 1, "decided": 4, "share": 0.25}
        assert report["within_breach"] == {"achieved": 2, "decided": 4, "share": 0.5}
        assert report["median_response_s"] == 7200.0
        assert report["breaches_per_week"] == {"2026-W48": 2}
        assert report["target_s"] == 3600.0 and report["breach_s"] == 14400.0
        default = client.get("/v1/reports/attainment").json()  # last 30 days before NOW
        assert default["count"] == 5
