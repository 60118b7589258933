"""`GET /v1/tickets` over a real server, on SQLite and PostgreSQL: what each item says, each
filter, the orders, the keyset cursor (also while tickets are being added) and bad input."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sla_engine.api import create_app
from sla_engine.composition import build_services
from sla_engine.config import load_config
from sla_engine.storage.models import NO_BREACH, PAUSED, Ticket, TicketQueueCalendar
from sla_engine.ticket_queue import queue_keys
from tests.support.server import serve_app

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # Wednesday, 05:00 in Phoenix
CONFIG = """
[policies.standard.resolution]
calendar = "smartertools"
breach = "16h"
"""
MON = "2026-11-23T{}:00-07:00"
TUE = "2026-11-24T{}:00-07:00"


@contextmanager
def queue_api(
    url: str, tmp_path: Path, clock: Callable[[], datetime] = lambda: NOW
) -> Iterator[tuple[httpx.Client, Any]]:
    """A real server whose `standard` policy also has a (pausable) resolution metric."""
    config = tmp_path / "sla-engine.toml"
    config.write_text(CONFIG)
    services = build_services(load_config(config, env={}, database_url=url), clock=clock)
    try:
        with serve_app(create_app(services)) as base, httpx.Client(base_url=base) as client:
            yield client, services
    finally:
        services.close()


def ticket(client: httpx.Client, tid: str, created: str, policy: str = "standard") -> None:
    answer = client.post("/v1/tickets", json={"id": tid, "policy": policy, "created_at": created})
    assert answer.status_code == 201, answer.text


def event(client: httpx.Client, tid: str, kind: str, at: str, **data: Any) -> None:
    body = {"event_id": f"{tid}-{kind}-{at}", "type": kind, "occurred_at": at, **data}
    answer = client.post(f"/v1/tickets/{tid}/events", json=body)
    assert answer.status_code == 201, answer.text


def queue(client: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/tickets", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def ids(client: httpx.Client, **params: Any) -> list[str]:
    return [item["id"] for item in queue(client, **params)["items"]]


def seed_helpdesk(client: httpx.Client) -> None:
    """Tickets in every standing; the comments say where each stands at NOW."""
    ticket(client, "overdue", MON.format("09:00"))  # both metrics running past breach
    ticket(client, "soon", TUE.format("15:00"))  # first response due Wed 10:00
    ticket(client, "answered", MON.format("09:00"))
    event(client, "answered", "agent_reply", MON.format("09:30"))  # resolution still runs
    ticket(client, "late", MON.format("09:00"))
    event(client, "late", "agent_reply", MON.format("15:00"))  # first response breached
    event(client, "late", "pending", MON.format("15:10"))  # resolution paused
    ticket(client, "solved", TUE.format("10:00"))
    event(client, "solved", "solved", TUE.format("10:30"))  # nothing runs
    ticket(client, "emergency", "2026-11-25T11:30:00Z", policy="emergency")  # 24x7, 12:30Z
    ticket(client, "handled", "2026-11-24T20:00:00Z", policy="emergency")
    event(client, "handled", "agent_reply", "2026-11-24T20:10:00Z")  # nothing runs after


def test_each_item_agrees_with_the_tickets_own_sla(db_url: str, tmp_path: Path) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        seed_helpdesk(client)
        page = queue(client, status="all")
        assert page["next_cursor"] is None
        assert len(page["items"]) == 7
        for item in page["items"]:
            sla = client.get(f"/v1/tickets/{item['id']}/sla").json()
            whole = client.get(f"/v1/tickets/{item['id']}").json()
            assert item["policy"] == sla["policy"]
            assert item["status"] == whole["status"]
            assert datetime.fromisoformat(item["created_at"]) == datetime.fromisoformat(
                whole["created_at"]
            )
            assert item["calendar"] is None
            expected = {
                name: {k: m[k] for k in ("status", "breach_at", "business_remaining_s")}
                for name, m in sla["metrics"].items()
            }
            assert item["metrics"] == expected, item["id"]
            running = [m["breach_at"] for m in sla["metrics"].values() if m["stopped_at"] is None]
            soonest = min(running, key=datetime.fromisoformat, default=None)
            assert item["next_breach_at"] == soonest, item["id"]


def test_default_order_is_the_most_overdue_first_and_nothing_running_last(
    db_url: str, tmp_path: Path
) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        seed_helpdesk(client)
        page = queue(client)
        assert [i["id"] for i in page["items"]] == [
            "overdue",  # first response due Mon 13:00 Phoenix
            "answered",  # resolution due Tue 16:00
            "emergency",  # first response due Wed 12:30Z (05:30 Phoenix)
            "soon",  # first response due Wed 10:00
            "late",  # all that runs is paused (resolution, since Mon 15:10): after the clocks
            "handled",  # nothing runs
        ]
        keys = [i["next_breach_at"] for i in page["items"]]
        running = [datetime.fromisoformat(k) for k in keys if k is not None]
        assert running == sorted(running)
        assert keys[-1] is None


def test_status_filter(db_url: str, tmp_path: Path) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        seed_helpdesk(client)
        assert set(ids(client)) == set(ids(client, status="open,pending"))
        assert ids(client, status="solved") == ["solved"]
        assert ids(client, status="pending") == ["late"]
        assert len(ids(client, status="all")) == 7
        assert set(ids(client, status="pending,solved")) == {"late", "solved"}


def test_policy_calendar_metric_breached_and_breach_before_filters(
    db_url: str, tmp_path: Path
) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        seed_helpdesk(client)
        assert ids(client, policy="emergency") == ["emergency", "handled"]
        # 24x7: the emergency first response; `handled` runs nothing any more
        assert ids(client, calendar="24x7") == ["emergency"]
        assert set(ids(client, calendar="smartertools")) == {"overdue", "answered", "soon", "late"}
        # metric=: only where it runs, ordered and keyed by it alone
        first = queue(client, metric="first_response")["items"]
        assert [i["id"] for i in first] == ["overdue", "emergency", "soon"]
        for item in first:
            assert item["next_breach_at"] == item["metrics"]["first_response"]["breach_at"]
        resolution = queue(client, metric="resolution")["items"]
        # `answered` and `overdue` share Tuesday 16:00: the ticket id breaks the tie; `late`'s
        # resolution is paused: it cannot breach before it resumes, so it comes after
        assert [i["id"] for i in resolution] == ["answered", "overdue", "soon", "late"]
        for item in resolution:
            assert item["next_breach_at"] == item["metrics"]["resolution"]["breach_at"]
        # breached: running past breach_at, or stopped after it
        assert set(ids(client, breached="true", status="all")) == {"overdue", "answered", "late"}
        assert set(ids(client, breached="false", status="all")) == {
            "soon",
            "solved",
            "emergency",
            "handled",
        }
        before = ids(client, breach_before="2026-11-25T00:00:00Z")
        assert before == ["overdue", "answered"]
        by_metric = ids(client, metric="first_response", breach_before="2026-11-25T15:00:00Z")
        assert by_metric == ["overdue", "emergency"]  # `soon` breaches at 17:00Z
        assert ids(client, policy="standard", breached="false") == ["soon"]


def test_newest_first_order(db_url: str, tmp_path: Path) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        seed_helpdesk(client)
        items = queue(client, order="-created_at", status="all")["items"]
        created = [(datetime.fromisoformat(i["created_at"]), i["id"]) for i in items]
        assert created == sorted(created, reverse=True)
        assert items[0]["id"] == "emergency"
        assert ids(client, order="-created_at", metric="first_response") == [
            "emergency",
            "soon",
            "overdue",
        ]


def page_through(
    client: httpx.Client, limit: int, between: Callable[[], None] = lambda: None, **params: Any
) -> list[str]:
    """Every page's ids, following the cursor; `between` runs before each next page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = queue(client, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        between()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"order": "-created_at"},
        {"metric": "first_response"},
        {"status": "all"},
        {"breached": "true"},
        {"breached": "false"},
        {"calendar": "24x7"},
    ],
    ids=["breach_at", "-created_at", "metric", "all", "breached", "not-breached", "calendar"],
)
def test_following_the_cursor_lists_every_match_once(
    db_url: str, tmp_path: Path, params: dict[str, str]
) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        # ties on purpose: three tickets per creation instant share their keys; half of them
        # breach (1 h on 24x7) before NOW
        for n in range(24):
            created = datetime(2026, 11, 25, 10, 30, tzinfo=UTC) + timedelta(minutes=10 * (n // 3))
            ticket(client, f"T-{n:02d}", created.isoformat(), "emergency")
        everything = ids(client, limit=500, **params)
        assert 9 <= len(everything) <= 24
        for limit in (1, 4, 7):
            assert page_through(client, limit, **params) == everything


def test_the_cursor_holds_while_tickets_are_added(db_url: str, tmp_path: Path) -> None:
    """Pages followed while another client adds tickets all over the order: every ticket that
    was there before lists exactly once, and nothing lists twice."""
    with queue_api(db_url, tmp_path) as (client, _):
        start = datetime(2026, 11, 25, 10, tzinfo=UTC)
        for n in range(60):
            ticket(
                client, f"A-{n:03d}", (start + timedelta(minutes=2 * n)).isoformat(), "emergency"
            )
        stop = threading.Event()
        added: list[str] = []

        def add() -> None:
            with httpx.Client(base_url=str(client.base_url)) as other:
                n = 0
                while not stop.is_set() and n < 1000:
                    at = start + timedelta(minutes=(37 * n) % 120, seconds=1)
                    ticket(other, f"B-{n:03d}", at.isoformat(), "emergency")
                    added.append(f"B-{n:03d}")
                    n += 1

        def another_one_added() -> None:
            """Let the other client add at least one ticket before the next page."""
            count = len(added)
            deadline = time.monotonic() + 10
            while len(added) == count and time.monotonic() < deadline:
                time.sleep(0.005)
            assert len(added) > count, "no ticket was added between two pages"

        adder = threading.Thread(target=add)
        adder.start()
        try:
            for params in ({}, {"order": "-created_at"}):
                seen = page_through(client, 7, another_one_added, **params)
                assert len(seen) == len(set(seen)), "a ticket was listed twice"
                before = [t for t in seen if t.startswith("A-")]
                assert sorted(before) == [f"A-{n:03d}" for n in range(60)]
        finally:
            stop.set()
            adder.join()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open,frozen"}, "status"),
        ({"status": ""}, "status"),
        ({"order": "breach"}, "order"),
        ({"metric": "first_reply"}, "metric"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"breached": "yes"}, "breached"),
        ({"breach_before": "2026-11-25T12:00:00"}, "breach_before"),
        ({"breach_before": "tomorrow"}, "breach_before"),
        ({"policy": "platinum"}, "policy"),
        ({"calendar": "mars"}, "calendar"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsIngiXQ"}, "cursor"),  # base64 of valid JSON, wrong shape
    ],
)
def test_bad_input_is_a_422_naming_the_parameter(
    db_url: str, tmp_path: Path, params: dict[str, str], field: str
) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        answer = client.get("/v1/tickets", params=params)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == field


def test_a_cursor_is_refused_with_another_order_or_metric(db_url: str, tmp_path: Path) -> None:
    with queue_api(db_url, tmp_path) as (client, _):
        for n in range(3):
            ticket(client, f"T-{n}", f"2026-11-25T1{n}:00:00Z", "emergency")
        cursor = queue(client, limit=1)["next_cursor"]
        assert cursor is not None
        for other in ({"order": "-created_at"}, {"metric": "first_response"}):
            answer = client.get("/v1/tickets", params={"cursor": cursor, "limit": 1, **other})
            assert answer.status_code == 422
            assert answer.json()["field"] == "cursor"


def stored_keys(services: Any) -> dict[str, tuple[datetime, bool, frozenset[str]]]:
    """Each ticket's queue keys and queue calendars as stored."""
    with services.engine.connect() as conn:
        tickets = conn.execute(
            sa.select(
                Ticket.id, Ticket.queue_breach_at, Ticket.stopped_late, Ticket.queue_calendars
            )
        ).all()
        calendars = conn.execute(
            sa.select(
                TicketQueueCalendar.ticket_id,
                TicketQueueCalendar.calendar,
                TicketQueueCalendar.queue_breach_at,
            )
        ).all()
    keys = {row.id: (row.queue_breach_at, row.stopped_late) for row in tickets}
    for row in calendars:  # each calendar row carries its ticket's key
        assert row.queue_breach_at == keys[row.ticket_id][0]
    found = {tid: frozenset(r.calendar for r in calendars if r.ticket_id == tid) for tid in keys}
    for row in tickets:  # and the ticket row lists them
        assert row.queue_calendars == "\n".join(sorted(found[row.id]))
    return {tid: (*key, found[tid]) for tid, key in keys.items()}


def test_the_hook_keeps_the_keys_of_every_write(db_url: str, tmp_path: Path) -> None:
    """After each kind of event the row's keys are what the ticket's state says."""
    with queue_api(db_url, tmp_path) as (client, services):
        seed_helpdesk(client)
        ticket(client, "moving", TUE.format("09:00"))
        for kind, at, data in (
            ("pending", TUE.format("09:30"), {}),
            ("customer_reply", TUE.format("11:00"), {}),
            ("agent_reply", TUE.format("11:30"), {}),
            ("customer_reply", TUE.format("12:00"), {}),
            ("policy_changed", TUE.format("12:30"), {"policy": "emergency"}),
            ("solved", TUE.format("13:00"), {}),
            ("reopened", TUE.format("14:00"), {}),
        ):
            event(client, "moving", kind, at, **data)
            for tid, stored in stored_keys(services).items():
                expected = queue_keys(services.tickets.sla(tid))
                assert stored == (
                    expected.queue_breach_at,
                    expected.stopped_late,
                    expected.calendars,
                ), (kind, tid)
        keys = stored_keys(services)
        assert keys["solved"] == (NO_BREACH, False, frozenset())
        assert keys["late"] == (PAUSED, True, frozenset({"smartertools"}))
        assert keys["overdue"][2] == frozenset({"smartertools"})
        assert keys["emergency"][2] == frozenset({"24x7"})


def test_the_migration_fills_the_keys_of_tickets_written_before_it(
    db_url: str, tmp_path: Path
) -> None:
    from alembic import command

    from sla_engine.storage.db import alembic_config, upgrade

    with queue_api(db_url, tmp_path) as (client, services):
        seed_helpdesk(client)
        written = stored_keys(services)
    command.downgrade(alembic_config(db_url), "0005")
    upgrade(db_url)
    services = build_services(load_config(None, env={}, database_url=db_url), migrate=False)
    try:
        assert stored_keys(services) == written
    finally:
        services.close()
