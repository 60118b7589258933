"""The daily housekeeping job, and random histories through the real services and database:
balances stay >= 0 and equal to the stored ledger's sum, whether or not housekeeping ran."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_engine.composition import Services
from sla_engine.errors import Conflict, InputError, PaymentRequired
from sla_engine.tickets import EventCreate, TicketCreate
from tests.conftest import pg_database
from tests.support.credits import make_services

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_start_background_books_expirations_without_being_asked(sqlite_url: str) -> None:
    services = make_services(sqlite_url)
    try:
        services.credits.grant("old", "license_purchase", datetime(2024, 5, 1, tzinfo=UTC))
        services.credits.grant("new", "renewal", services.clock() - timedelta(days=1))
        services.start_background()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            types = [e["type"] for e in services.credits.ledger("old")["entries"]]
            if "expiry" in types:
                break
            time.sleep(0.1)
        assert types == ["grant", "expiry"]
        assert [e["type"] for e in services.credits.ledger("new")["entries"]] == ["grant"]
    finally:
        services.close()


def test_the_housekeeping_job_is_daily(sqlite_url: str) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from sla_engine.credits import housekeeping

    started: list[BackgroundScheduler] = []
    original = housekeeping.BackgroundScheduler

    class Recording(original):  # type: ignore[misc, valid-type]
        def start(self, *args: Any, **kwargs: Any) -> None:
            started.append(self)
            super().start(*args, **kwargs)

    services = make_services(sqlite_url)
    housekeeping.BackgroundScheduler = Recording  # type: ignore[misc]
    try:
        stop = housekeeping.start_housekeeping(services.sessionmaker, services.clock)
        (job,) = started[0].get_jobs()
        assert job.trigger.interval == timedelta(days=1)
        stop()
    finally:
        housekeeping.BackgroundScheduler = original  # type: ignore[misc]
        services.close()


# --- random histories through the services ---------------------------------------------------

DAY = st.integers(min_value=0, max_value=800)
OPERATION = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(["license_purchase", "renewal"]), DAY),
    st.tuples(st.just("buy"), st.integers(1, 3), DAY),
    st.tuples(st.just("submit"), st.sampled_from(["standard", "emergency"]), DAY),
    st.tuples(st.just("bug"), st.sampled_from(["refund", "credit"]), st.integers(0, 30)),
    st.tuples(st.just("housekeeping"), DAY, st.just(0)),
)
_accounts = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """One service per database for every example; examples keep apart by account."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'sla-engine.db'}"
        else:
            url = stack.enter_context(pg_database())
        running = make_services(url)
        stack.callback(running.close)
        yield running


def day(n: int) -> datetime:
    return T0 + timedelta(days=n, hours=n % 24)


def perform(services: Services, account: str, op: tuple[Any, ...], n: int) -> None:
    kind, a, b = op
    credits, tickets = services.credits, services.tickets
    try:
        if kind == "grant":
            credits.grant(account, a, day(b))
        elif kind == "buy":
            credits.grant(account, "ticket_purchase", day(b), quantity=a, price_per_ticket="10")
        elif kind == "submit":
            tickets.create_ticket(TicketCreate(f"{account}-T{n}", a, day(b), account=account))
        elif kind == "bug":
            mine = [e for e in credits.ledger(account)["entries"] if e["type"] == "consumption"]
            if mine:
                ticket = mine[n % len(mine)]
                when = datetime.fromisoformat(ticket["occurred_at"]) + timedelta(days=b)
                tickets.add_event(
                    ticket["ticket_id"],
                    EventCreate(f"bug-{n}", "verified_bug", when, {"remedy": a}),
                )
        else:
            credits.record_expirations(day(a))
    except (PaymentRequired, Conflict, InputError):
        pass


def ledger_sum(entries: list[dict[str, Any]], at: datetime) -> int:
    lots = {e["id"]: e for e in entries if e["expires_at"] and e["type"] != "subscription"}

    def valid(lot: dict[str, Any]) -> bool:
        return (
            datetime.fromisoformat(lot["occurred_at"])
            <= at
            < datetime.fromisoformat(lot["expires_at"])
        )

    total = 0
    for e in entries:
        if datetime.fromisoformat(e["occurred_at"]) > at:
            continue
        if (e["id"] in lots and valid(e)) or (
            e["type"] == "consumption" and valid(lots[e["lot_id"]])
        ):
            total += e["quantity"]
    return int(total)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPERATION, min_size=1, max_size=12), probes=st.lists(DAY, max_size=4))
def test_random_histories_through_the_service_keep_balances_right(
    services: Services, ops: list[tuple[Any, ...]], probes: list[int]
) -> None:
    account = f"prop-{next(_accounts)}"
    for n, op in enumerate(ops):
        perform(services, account, op, n)
    entries = services.credits.ledger(account)["entries"]
    instants = [day(p) for p in probes] + [
        datetime.fromisoformat(e["occurred_at"]) for e in entries
    ]
    for instant in instants:
        balance = services.credits.credits(account, instant)
        assert balance["email"] >= 0 and balance["emergency"] >= 0
        assert all(lot["remaining"] > 0 for lot in balance["lots"])
        assert balance["email"] + balance["emergency"] == ledger_sum(entries, instant)
    now = services.clock()
    services.credits.record_expirations(now)
    entries = services.credits.ledger(account)["entries"]
    booked = sum(e["quantity"] for e in entries if datetime.fromisoformat(e["occurred_at"]) <= now)
    current = services.credits.credits(account, now)
    assert booked == current["email"] + current["emergency"]
