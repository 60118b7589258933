"""The cost of a ticket's event as its log grows: the 10th event against the 10,000th.

Through `TicketService.add_event` on SQLite with the service's hooks (credits, escalation
timers, queue keys), as `sla-engine serve` builds them. The SPEC asks that the 10,000th
event cost at most 1.5x the 10th: an event later than the ticket's last one is applied to the
saved clock state instead of replaying the log.

- 10th event: `--tickets` fresh tickets get 9 events each; the 10th of each is timed.
- Nth event (default 10,000): one ticket's log is filled to N - 21 events with plain INSERTs
  (the log as it would be), then 20 events are posted untimed (the first one of them replays
  the whole log once and saves the clock), then events N .. N + 19 are timed.

Each figure is the median wall time and the median CPU time of this process (the service
and SQLite both run in it). Works on any checkout that has `build_services` and
`sla_engine.tickets` (run it with PYTHONPATH=<checkout> to measure another commit).

    python benchmarks/event_cost.py            # 10th vs 10,000th
    python benchmarks/event_cost.py --quick    # 10th vs 1,000th, for smoke tests
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sla_engine.composition import build_services
from sla_engine.config import load_config
from sla_engine.storage.models import TicketEvent
from sla_engine.tickets import EventCreate, TicketCreate

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
CYCLE = ("customer_reply", "agent_reply", "pending", "open")
TIMED = 20
RATIO_LIMIT = 1.5


def kind(i: int) -> str:
    return CYCLE[i % len(CYCLE)]


def when(i: int) -> datetime:
    return T0 + timedelta(seconds=30 * (i + 1))


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def post(services: Any, ticket_id: str, i: int) -> Callable[[], Any]:
    request = EventCreate(f"e{i}", kind(i), when(i))
    return lambda: services.tickets.add_event(ticket_id, request)


def tenth_event(services: Any, tickets: int) -> list[tuple[float, float]]:
    samples = []
    for n in range(tickets):
        ticket_id = f"fresh-{n}"
        services.tickets.create_ticket(TicketCreate(ticket_id, "standard", T0))
        for i in range(9):
            post(services, ticket_id, i)()
        samples.append(timed(post(services, ticket_id, 9)))
    return samples


def nth_event(services: Any, n: int) -> list[tuple[float, float]]:
    ticket_id = "long"
    services.tickets.create_ticket(TicketCreate(ticket_id, "standard", T0))
    filled = n - 1 - TIMED  # events inserted as rows, before the untimed posts
    table = TicketEvent.__table__
    rows = [
        {
            "ticket_id": ticket_id,
            "event_id": f"e{i}",
            "type": kind(i),
            "occurred_at": when(i),
            "data": {},
            "received_at": when(i),
        }
        for i in range(filled)
    ]
    with services.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(sa.insert(table), rows[start : start + 5000])
    for i in range(filled, n - 1):
        post(services, ticket_id, i)()
    return [timed(post(services, ticket_id, i)) for i in range(n - 1, n - 1 + TIMED)]


def median(samples: list[tuple[float, float]], index: int) -> float:
    return statistics.median(s[index] for s in samples)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 1,000th event, few tickets")
    parser.add_argument("--events", type=int, help="N: time the Nth event (default 10,000)")
    parser.add_argument("--tickets", type=int, help="fresh tickets for the 10th event")
    args = parser.parse_args(argv)
    n = args.events or (1_000 if args.quick else 10_000)
    tickets = args.tickets or (10 if args.quick else 40)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'event-cost.db'}"
        services = build_services(
            load_config(None, env={}, database_url=url), clock=lambda: when(n + 100)
        )
        try:
            ten = tenth_event(services, tickets)
            far = nth_event(services, n)
        finally:
            services.close()
    ratio = median(far, 0) / median(ten, 0)
    print(f"event cost on SQLite through TicketService.add_event (median of {tickets} / {TIMED})")
    print(f"  10th event:      {median(ten, 0):7.2f} ms wall, {median(ten, 1):7.2f} ms CPU")
    print(f"  {n:,}th event: {median(far, 0):7.2f} ms wall, {median(far, 1):7.2f} ms CPU")
    print(f"  ratio (wall):    {ratio:7.2f}  (target: at most {RATIO_LIMIT})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
