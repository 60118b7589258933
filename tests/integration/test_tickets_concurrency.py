"""Concurrent event posts through the real HTTP server never answer 5xx and lose nothing.

Real parts: `sla-engine`'s app under uvicorn on 127.0.0.1, the ticket service with its credit
and escalation hooks, SQLite and PostgreSQL. Several client threads post events to the same
and to different tickets at once (some event ids twice, from two threads), while another
thread keeps firing due escalation timers, which materialises repeat timers for the tickets
being written (the hook and the firing step race for the same timer key).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from sla_engine.api import create_app
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.escalation.models import EscalationTimer
from sla_engine.storage.models import TicketEvent, TicketMetric
from sla_engine.tickets import EventCreate, TicketCreate
from tests.support.server import serve_app

ONCALL = """
[database]
url = "{url}"

[[destinations]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""
CONFIG = (
    ONCALL
    + """
[policies.standard.first_response]
escalate = [{{at = "75%", to = "oncall"}}, {{at = "100%", to = "oncall"}}]
repeat_after_breach = {{every = "1m", to = "oncall"}}

[policies.standard.next_response]
calendar = "24x7"
breach = "1m"
escalate = [{{at = "50%", to = "oncall"}}]
repeat_after_breach = {{every = "1m", to = "oncall"}}
"""
)
THREADS = 6
TICKETS = 4
EVENTS_PER_TICKET = 24
# Long ago: every metric is breached, so repeat timers fall due and are fired meanwhile.
CREATED = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    path = tmp_path / "sla.toml"
    path.write_text(CONFIG.format(url=db_url))
    built = build_services(load_config(path, env={}))
    try:
        yield built
    finally:
        built.close()


def _jobs(tickets: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Events interleaved over the tickets; every fifth one is posted twice."""
    jobs = []
    for n in range(EVENTS_PER_TICKET):
        for ticket in tickets:
            kind = ("customer_reply", "agent_reply", "pending", "open")[n % 4]
            at = CREATED + timedelta(minutes=1 + n)
            body = {"event_id": f"{ticket}-ev-{n}", "type": kind, "occurred_at": at.isoformat()}
            if n == EVENTS_PER_TICKET // 2:
                body.update(type="policy_changed", policy="emergency")
            jobs.append((ticket, body))
            if n % 5 == 0:
                jobs.append((ticket, body))
    return jobs


def _fire_until(services: Services, stop: threading.Event, failures: list[str]) -> None:
    engine = services.escalations.engine
    while not stop.is_set():
        try:
            engine.fire_due(datetime.now(UTC))
        except Exception as exc:
            failures.append(f"firing: {type(exc).__name__}: {exc}")


def test_concurrent_event_posts_answer_no_5xx_and_keep_every_event(services: Services) -> None:
    tickets = [f"C-{i}" for i in range(TICKETS)]
    jobs = _jobs(tickets)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    with serve_app(create_app(services)) as base:
        with httpx.Client(base_url=base, timeout=60) as client:
            for ticket in tickets:
                answer = client.post(
                    "/v1/tickets",
                    json={"id": ticket, "policy": "standard", "created_at": CREATED.isoformat()},
                )
                assert answer.status_code == 201, answer.text

        def post(chunk: list[tuple[str, dict[str, str]]]) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                for ticket, body in chunk:
                    answer = client.post(f"/v1/tickets/{ticket}/events", json=body)
                    with lock:
                        statuses[answer.status_code] += 1
                        if answer.status_code >= 300:
                            failures.append(f"{answer.status_code} {answer.text[:300]}")

        stop = threading.Event()
        firing = threading.Thread(target=_fire_until, args=(services, stop, failures))
        posters = [threading.Thread(target=post, args=(jobs[i::THREADS],)) for i in range(THREADS)]
        firing.start()
        for t in posters:
            t.start()
        for t in posters:
            t.join()
        stop.set()
        firing.join()

        assert failures == []
        unique = {(ticket, body["event_id"]) for ticket, body in jobs}
        assert statuses[201] == len(unique)
        assert statuses[201] + statuses[200] == len(jobs)

        with httpx.Client(base_url=base, timeout=60) as client:
            answers = {t: client.get(f"/v1/tickets/{t}").json() for t in tickets}

    with services.sessionmaker() as session:
        for ticket in tickets:
            stored = session.scalars(
                sa.select(TicketEvent.event_id).where(TicketEvent.ticket_id == ticket)
            ).all()
            assert sorted(stored) == sorted(e for t, e in unique if t == ticket)
            assert [e["event_id"] for e in answers[ticket]["events"]] == [
                f"{ticket}-ev-{n}" for n in range(EVENTS_PER_TICKET)
            ]
            metrics = {
                m.metric: m
                for m in session.scalars(
                    sa.select(TicketMetric).where(TicketMetric.ticket_id == ticket)
                )
            }
            assert set(metrics) == set(answers[ticket]["sla"]["metrics"])
            for name, shown in answers[ticket]["sla"]["metrics"].items():
                assert datetime.fromisoformat(shown["breach_at"]) == metrics[name].breach_at
            keys = session.execute(
                sa.select(
                    EscalationTimer.metric, EscalationTimer.cycle, EscalationTimer.threshold
                ).where(EscalationTimer.ticket_id == ticket)
            ).all()
            assert len(keys) == len(set(keys))


RACE_CONFIG = (
    ONCALL
    + """
[policies.standard.first_response]
calendar = "24x7"
breach = "1m"
target = "30s"
repeat_after_breach = {{every = "1h", to = "oncall"}}
"""
)


def _wait_for_lock_waiter(services: Services) -> None:
    """Until a transaction of this database waits on a row lock (PostgreSQL only)."""
    if services.engine.dialect.name != "postgresql":
        return
    query = sa.text(
        "select count(*) from pg_stat_activity "
        "where datname = current_database() and wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    with services.engine.connect() as conn:
        while conn.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the ticket write never waited on the timer lock"
            time.sleep(0.02)


def test_event_racing_a_firing_that_materialises_the_next_repeat(
    db_url: str, tmp_path: Path
) -> None:
    """The firing step fires repeat:1 and inserts repeat:2 while a ticket write waits on the
    timer rows; the write then plans repeat:2 too. It must not fail (the request is retried
    on the unique-key conflict) and the repeat exists once."""
    path = tmp_path / "sla.toml"
    path.write_text(RACE_CONFIG.format(url=db_url))
    services = build_services(load_config(path, env={}))
    try:
        now = datetime.now(UTC)
        created = now - timedelta(minutes=90)
        services.tickets.create_ticket(TicketCreate("R-1", "standard", created))
        outcome: list[object] = []

        def post_event() -> None:
            try:
                outcome.append(
                    services.tickets.add_event(
                        "R-1", EventCreate("c-1", "customer_reply", now - timedelta(minutes=5))
                    )
                )
            except Exception as exc:
                outcome.append(exc)

        writer = threading.Thread(target=post_event)
        with services.sessionmaker() as session, session.begin():
            report = services.escalations.engine.firing.fire_due(session, now)
            assert report.fired == 1
            writer.start()
            _wait_for_lock_waiter(services)
        writer.join(timeout=60)

        assert len(outcome) == 1 and isinstance(outcome[0], dict), outcome
        assert outcome[0]["duplicate"] is False
        with services.sessionmaker() as session:
            repeats = session.execute(
                sa.select(EscalationTimer.threshold, EscalationTimer.status)
                .where(EscalationTimer.ticket_id == "R-1")
                .order_by(EscalationTimer.threshold)
            ).all()
        assert [tuple(r) for r in repeats] == [("repeat:1", "fired"), ("repeat:2", "pending")]
    finally:
        services.close()
