"""Calendars over HTTP on SQLite and PostgreSQL: `PUT /v1/calendars/{name}` (JSON and TOML),
`GET .../versions`, listing and showing stored and versioned calendars, concurrent PUTs from
real clients, the body cap, and no server path in any answer (issue 10, defect 3)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sla_engine.core.calendar_file import PROJECT_CALENDARS
from tests.support.api import row_counts, running_api
from tests.support.calendars import Clock, weekdays, weekdays_toml

NOW = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)  # Wednesday 14:00 in Phoenix
DAY = weekdays("08:00-17:00")
MORNING = weekdays("08:00-13:00")
MORNING_TOML = (
    weekdays_toml("Mornings", "08:00-13:00")
    + "\n[[closures]]\nstart = 2026-12-24T08:00:00\nend = 2026-12-28T08:00:00\n"
)
ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:offsite-1
DTSTART;VALUE=DATE:20261203
DTEND;VALUE=DATE:20261204
SUMMARY:Team offsite
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def api(db_url: str, calendar_dir: Path) -> Iterator[tuple[httpx.Client, Any, Clock]]:
    clock = Clock(NOW)
    with running_api(db_url, clock=clock) as (client, services):
        yield client, services, clock


def put(client: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return client.put(f"/v1/calendars/{name}", json=body)


def test_create_then_append_versions(api: tuple[httpx.Client, Any, Clock]) -> None:
    client, _, clock = api
    created = put(client, "desk", definition=DAY)
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "desk", "version": 1, "effective_from": None}
    clock.now = NOW + timedelta(minutes=1)
    appended = put(client, "desk", definition=MORNING)
    assert appended.status_code == 201
    assert appended.json() == {
        "name": "desk",
        "version": 2,
        "effective_from": clock.now.isoformat(),
    }
    monday = "2026-12-07T00:00:00-07:00"
    toml = client.put(
        "/v1/calendars/desk",
        content=MORNING_TOML,
        headers={"Content-Type": "application/toml"},
        params={"effective_from": monday},
    )
    assert toml.status_code == 201, toml.text
    assert toml.json()["version"] == 3
    versions = client.get("/v1/calendars/desk/versions").json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["effective_from"] is None and versions[0]["definition"] == DAY
    assert versions[2]["definition"]["closures"][0]["start"] == "2026-12-24T08:00:00"
    assert set(versions[0]) >= {"version", "effective_from", "created_at", "retroactive"}


def test_effective_from_rules(api: tuple[httpx.Client, Any, Clock]) -> None:
    client, _, _ = api
    born = put(client, "desk", definition=DAY, effective_from=NOW.isoformat())
    assert born.status_code == 422 and born.json()["field"] == "effective_from"
    assert put(client, "desk", definition=DAY).status_code == 201
    past = (NOW - timedelta(days=1)).isoformat()
    refused = put(client, "desk", definition=MORNING, effective_from=past)
    assert refused.status_code == 409 and refused.json()["field"] == "effective_from"
    retro = put(client, "desk", definition=MORNING, effective_from=past, retroactive=True)
    assert retro.status_code == 201 and retro.json()["version"] == 2
    older = (NOW - timedelta(days=2)).isoformat()
    again = put(client, "desk", definition=DAY, effective_from=older, retroactive=True)
    assert again.status_code == 409  # before version 2's start, whatever the flag
    naive = put(client, "desk", definition=DAY, effective_from="2026-12-09T08:00:00")
    assert naive.status_code == 422 and naive.json()["field"] == "effective_from"
    versions = client.get("/v1/calendars/desk/versions").json()
    assert [(v["version"], v["retroactive"]) for v in versions] == [(1, False), (2, True)]


def test_bad_definitions_are_422_naming_the_key_and_store_nothing(
    api: tuple[httpx.Client, Any, Clock],
) -> None:
    client, services, _ = api
    before = row_counts(services)
    cases = [
        ({"definition": {"timezone": "Nowhere/Land", "hours": {}}}, "timezone"),
        ({"definition": {**DAY, "hours": {"mon": ["25:00-26:00"]}}}, "hours.mon[0]"),
        ({"definition": {**DAY, "dates": {"2026-02-30": []}}}, "dates.2026-02-30"),
        ({"definition": {**DAY, "holidays": {"country": "XX"}}}, "holidays.country"),
        ({"definition": {**DAY, "holidays": {"ics": ["/etc/passwd"]}}}, "holidays.ics"),
        ({"definition": {**DAY, "holidays": {"ics_text": "BEGIN:NONSENSE"}}}, "holidays.ics_text"),
        ({"definition": {**DAY, "colour": "red"}}, "colour"),
        # Keys that are empty or not plain names are quoted, so the field is never blank.
        ({"definition": {"": False}}, '""'),
        ({"definition": {**DAY, "a.b c": 1}}, '"a.b c"'),
        ({"definition": {**DAY, "hours": {"": []}}}, 'hours.""'),
        ({"definition": {**DAY, "dates": {"": []}}}, 'dates.""'),
        ({"definition": {**DAY, "holidays": {"": 1}}}, 'holidays.""'),
        ({"definition": {**DAY, "closures": [{"": 1}]}}, 'closures[0].""'),
        ({"definition": DAY, "extra": 1}, "extra"),
        ({"definition": "08:00-17:00"}, "definition"),
        ({}, "definition"),
    ]
    for body, key in cases:
        answer = client.put("/v1/calendars/desk", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == key, (key, answer.json())
    toml = client.put(
        "/v1/calendars/desk", content="timezone = ", headers={"Content-Type": "application/toml"}
    )
    assert toml.status_code == 422 and toml.json()["field"] == "body"
    assert put(client, "bad name!", definition=DAY).status_code in (404, 422)
    assert row_counts(services) == before


def test_holidays_from_ics_text(api: tuple[httpx.Client, Any, Clock]) -> None:
    client, _, _ = api
    body = {"definition": {**DAY, "holidays": {"ics_text": ICS}}}
    assert client.put("/v1/calendars/offsite", json=body).status_code == 201
    shown = client.get(
        "/v1/calendars/offsite/intervals",
        params={"from": "2026-12-03T00:00:00-07:00", "to": "2026-12-05T00:00:00-07:00"},
    ).json()
    assert shown["intervals"] == [
        {"start": "2026-12-04T08:00:00-07:00", "end": "2026-12-04T17:00:00-07:00"}
    ]


def test_body_cap_and_media_types(api: tuple[httpx.Client, Any, Clock]) -> None:
    client, _, _ = api
    huge = client.put(
        "/v1/calendars/desk",
        content=b'{"definition": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("application/problem+json")
    form = client.put("/v1/calendars/desk", content=b"a=b", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415


def test_list_and_show_stored_and_file_calendars(
    api: tuple[httpx.Client, Any, Clock], calendar_dir: Path
) -> None:
    client, _, clock = api
    (calendar_dir / "team.toml").write_text(
        'name = "Team"\ntimezone = "Europe/Berlin"\n[hours]\nmon = ["08:00-17:00"]\n'
    )
    assert put(client, "desk", definition=DAY).status_code == 201
    monday = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday 00:00 in Phoenix
    shifted = {**MORNING, "timezone": "UTC"}
    put(client, "desk", definition=shifted, effective_from=monday.isoformat())
    listed = {c["name"]: c for c in client.get("/v1/calendars").json()["calendars"]}
    assert {"desk", "team", "smartertools", "24x7"} <= set(listed)
    assert listed["desk"]["versions"] == 2 and listed["desk"]["timezone"] == "America/Phoenix"
    assert listed["team"]["title"] == "Team"
    shown = client.get("/v1/calendars/desk").json()
    assert shown["version"] == 1 and shown["definition"] == DAY and shown["versions"] == 2
    assert shown["open_now"] is True
    assert shown["next_close"] == "2026-12-02T17:00:00-07:00"
    # across the change: Friday in Phoenix's hours, Monday in the new version's (UTC)
    spans = client.get(
        "/v1/calendars/desk/intervals",
        params={"from": "2026-12-04T00:00:00-07:00", "to": "2026-12-08T00:00:00-07:00"},
    ).json()["intervals"]
    assert spans == [
        {"start": "2026-12-04T08:00:00-07:00", "end": "2026-12-04T17:00:00-07:00"},
        {"start": "2026-12-07T08:00:00+00:00", "end": "2026-12-07T13:00:00+00:00"},
    ]
    clock.now = monday + timedelta(hours=3)  # 10:00 UTC
    later = client.get("/v1/calendars/desk").json()
    assert later["version"] == 2 and later["timezone"] == "UTC" and later["open_now"] is True


def test_24x7_is_shown_and_never_closes(api: tuple[httpx.Client, Any, Clock]) -> None:
    """Issue 10, defect 3: a calendar that never closes is valid."""
    client, _, _ = api
    shown = client.get("/v1/calendars/24x7")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["open_now"] is True and body["next_close"] is None
    assert body["next_open"] == NOW.isoformat()


def test_no_answer_shows_a_server_path(
    api: tuple[httpx.Client, Any, Clock], calendar_dir: Path, tmp_path: Path
) -> None:
    client, _, _ = api
    (calendar_dir / "broken.toml").write_text('timezone = "Mars/Base"\n')
    (calendar_dir / "with-ics.toml").write_text(
        'timezone = "UTC"\n[hours]\nmon = ["08:00-17:00"]\n[holidays]\nics = ["off.ics"]\n'
    )
    (calendar_dir / "off.ics").write_text(ICS)
    paths = {str(tmp_path), str(calendar_dir), str(PROJECT_CALENDARS), str(Path.cwd())}
    requests: list[Callable[[], httpx.Response]] = [
        lambda: client.get("/v1/calendars"),
        lambda: client.get("/v1/calendars/24x7"),
        lambda: client.get("/v1/calendars/smartertools"),
        lambda: client.get("/v1/calendars/broken"),
        lambda: client.get("/v1/calendars/broken/intervals"),
        lambda: client.get("/v1/calendars/broken/versions"),
        lambda: client.get("/v1/calendars/with-ics"),
        lambda: client.get("/v1/calendars/with-ics/versions"),
        lambda: client.get("/v1/calendars/nope"),
        lambda: client.get("/v1/calendars/nope/intervals"),
        lambda: client.get("/v1/calendars/nope/versions"),
        lambda: client.get("/v1/calendars/..%2F..%2Fetc%2Fpasswd"),
        lambda: client.get("/v1/calendars/smartertools/intervals", params={"from": "x"}),
        lambda: client.get(
            "/v1/calendars/24x7/intervals",
            params={"from": "2026-12-01T00:00:00Z", "to": "2028-12-01T00:00:00Z"},
        ),
        lambda: put(client, "broken", definition={"timezone": "UTC", "hours": {"mon": ["x"]}}),
        lambda: put(client, "x", definition={**DAY, "holidays": {"ics": ["off.ics"]}}),
        lambda: client.post(
            "/v1/deadlines", json={"calendar": "broken", "start": NOW.isoformat(), "duration": "1h"}
        ),
        lambda: client.post(
            "/v1/deadlines",
            json={"calendar": "../x", "start": NOW.isoformat(), "duration": "1h"},
        ),
    ]
    for request in requests:
        answer = request()
        assert answer.status_code < 500, answer.text
        for path in paths:
            assert path not in answer.text, (path, answer.text)
    assert client.get("/v1/calendars/with-ics").status_code == 200


def test_deadlines_use_stored_calendars(api: tuple[httpx.Client, Any, Clock]) -> None:
    client, _, _ = api
    put(client, "desk", definition=DAY)
    put(client, "desk", definition=MORNING)  # from now (Wednesday 14:00) on: mornings
    answer = client.post(
        "/v1/deadlines",
        json={"calendar": "desk", "start": "2026-12-02T12:00:00-07:00", "duration": "4h"},
    )
    assert answer.status_code == 200, answer.text
    # 12:00-14:00 in the old hours, then Thursday 08:00 + 2h
    assert answer.json()["deadline"] == "2026-12-03T10:00:00-07:00"


@pytest.mark.parametrize("clients", [8])
def test_concurrent_puts_give_consecutive_versions_or_409(db_url: str, clients: int) -> None:
    """Real concurrent HTTP requests against one server: never a lost or interleaved
    version."""
    with running_api(db_url, clock=lambda: datetime.now(UTC)) as (client, _services):
        assert put(client, "race", definition=DAY).status_code == 201
        barrier = threading.Barrier(clients)
        answers: list[tuple[int, httpx.Response]] = []
        lock = threading.Lock()
        base = str(client.base_url)

        def one(index: int) -> None:
            hours = {"mon": [f"08:00-{10 + index}:00"]}
            with httpx.Client(base_url=base, timeout=60) as own:
                barrier.wait()
                answer = own.put(
                    "/v1/calendars/race",
                    json={"definition": {"timezone": "UTC", "hours": hours}},
                )
            with lock:
                answers.append((index, answer))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(a.status_code in (201, 409) for _, a in answers), [a.text for _, a in answers]
        won = sorted(a.json()["version"] for _, a in answers if a.status_code == 201)
        versions = client.get("/v1/calendars/race/versions").json()
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
        assert won == list(range(2, len(versions) + 1))
        # each stored version is one request's whole definition, in the order they landed
        starts = [v["effective_from"] for v in versions[1:]]
        assert starts == sorted(starts)
        stored_hours = sorted(v["definition"]["hours"]["mon"][0] for v in versions[1:])
        sent = sorted(f"08:00-{10 + i}:00" for i, a in answers if a.status_code == 201)
        assert stored_hours == sent
