"""Submissions racing for an account's last credits: exactly as many win as there are credits,
on SQLite and PostgreSQL, through concurrent HTTP requests and through threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from sla_engine.errors import PaymentRequired
from sla_engine.tickets import TicketCreate
from tests.support.credits import make_services, running_credits_api

RACERS = 8
CREATED_AT = "2026-02-01T10:00:00+00:00"


def race(n: int, attempt: Callable[[int], str]) -> list[str]:
    """Run `attempt(i)` for i < n in n threads released together; their outcomes."""
    barrier = threading.Barrier(n)

    def run(i: int) -> str:
        barrier.wait(timeout=30)
        return attempt(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_http_submissions_for_the_last_credit_exactly_one_wins(db_url: str) -> None:
    with running_credits_api(db_url) as api:
        assert api.grant("last", "renewal", "2026-01-01T00:00:00Z").status_code == 201
        base = str(api.client.base_url)
        clients = [httpx.Client(base_url=base, timeout=60) for _ in range(RACERS)]

        def submit(i: int) -> str:
            body = {
                "id": f"R-{i}",
                "policy": "standard",
                "created_at": CREATED_AT,
                "account": "last",
            }
            return str(clients[i].post("/v1/tickets", json=body).status_code)

        try:
            outcomes = race(RACERS, submit)
        finally:
            for client in clients:
                client.close()
        assert sorted(outcomes) == ["201"] + ["402"] * (RACERS - 1)
        winner = outcomes.index("201")
        consumptions = [e for e in api.ledger("last") if e["type"] == "consumption"]
        assert [e["ticket_id"] for e in consumptions] == [f"R-{winner}"]
        assert api.credits("last", "2026-02-02T00:00:00Z")["email"] == 0
        for i in range(RACERS):
            expected = 200 if i == winner else 404
            assert api.client.get(f"/v1/tickets/R-{i}").status_code == expected


def test_threads_racing_for_two_credits_exactly_two_win(db_url: str) -> None:
    services = make_services(db_url)
    try:
        services.credits.grant("two", "license_purchase", datetime(2026, 1, 1, tzinfo=UTC))
        created_at = datetime.fromisoformat(CREATED_AT)

        def submit(i: int) -> str:
            request = TicketCreate(
                id=f"T-{i}", policy="standard", created_at=created_at, account="two"
            )
            try:
                services.tickets.create_ticket(request)
            except PaymentRequired:
                return "refused"
            return "created"

        outcomes = race(RACERS, submit)
        assert sorted(outcomes) == ["created"] * 2 + ["refused"] * (RACERS - 2)
        entries = services.credits.ledger("two")["entries"]
        assert sum(1 for e in entries if e["type"] == "consumption") == 2
        balance = services.credits.credits("two", datetime(2026, 2, 2, tzinfo=UTC))
        assert balance["email"] == 0 and balance["lots"] == []
    finally:
        services.close()
