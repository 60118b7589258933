"""`GET /v1/tickets` page latency with few and with many tickets, on SQLite and PostgreSQL.

The fixture rows (tickets and their metric rows, queue keys included) are bulk-inserted
straight into a migrated database: a realistic mix of closed history and open work, two
policies, two calendars. Then `sla-engine serve` answers pages to one keep-alive client:
the first page and a page deep in the listing (a cursor half-way down), default order and a
few filters. A page walks an index and stops after `limit + 1` rows, so its latency should not
grow with the number of tickets.

    python benchmarks/queue_latency.py            # 1,000 and 50,000 tickets (make bench)
    python benchmarks/queue_latency.py --full     # 1,000 and 1,000,000 tickets
    python benchmarks/queue_latency.py --quick    # 1,000 and 5,000, few requests (smoke test)
    python benchmarks/queue_latency.py --plans    # also print each page's query plan
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import postgres_database, server

from sla_engine.storage.db import make_engine, upgrade
from sla_engine.storage.models import (
    NO_BREACH,
    PAUSED,
    Ticket,
    TicketMetric,
    TicketQueueCalendar,
)
from sla_engine.ticket_queue import decode_cursor, make_listing
from sla_engine.ticket_queue.listing import After, encode_cursor
from sla_engine.ticket_queue.store import page_params, page_query

CHUNK = 20_000
PAGE_LIMIT = 50
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "policy=emergency": {"policy": "emergency"},
    "metric=resolution": {"metric": "resolution"},
    "calendar=24x7": {"calendar": "24x7"},
    "breached=true": {"breached": "true"},
    "breached=false": {"breached": "false"},
    "policy+calendar": {"policy": "standard", "calendar": "smartertools"},
    "order=-created_at": {"order": "-created_at"},
}


@dataclass(frozen=True)
class Sizes:
    counts: tuple[int, ...]
    requests: int


QUICK = Sizes(counts=(1_000, 5_000), requests=10)
DEFAULT = Sizes(counts=(1_000, 50_000), requests=200)
FULL = Sizes(counts=(1_000, 1_000_000), requests=300)


# --- the fixture ---------------------------------------------------------------------------


Rows = list[dict[str, Any]]


def fixture_rows(count: int, now: datetime, seed: int = 7) -> Iterator[tuple[Rows, Rows, Rows]]:
    """(tickets, metric rows) in chunks: 70% solved or closed, 25% open, 5% pending; 85%
    `standard`, 15% `emergency`; half with a resolution metric; queue keys and calendar rows
    as the queue's hook writes them."""
    rng = random.Random(seed)
    for first in range(0, count, CHUNK):
        tickets: list[dict[str, Any]] = []
        metrics: list[dict[str, Any]] = []
        calendars: list[dict[str, Any]] = []
        for n in range(first, min(count, first + CHUNK)):
            ticket_id = f"T-{n:08d}"
            roll = rng.random()
            status = "closed" if roll < 0.35 else "solved" if roll < 0.7 else "pending"
            status = "open" if roll >= 0.75 else status
            emergency = rng.random() < 0.15
            policy = "emergency" if emergency else "standard"
            done = status in ("solved", "closed")
            age = timedelta(days=rng.uniform(0, 365) if done else rng.uniform(0, 10))
            created = now - age
            rows = [
                _metric(
                    ticket_id,
                    "first_response",
                    policy,
                    "24x7" if emergency else "smartertools",
                    created,
                    timedelta(hours=1 if emergency else 4),
                    running=status == "open" and rng.random() < 0.4,
                    now=now,
                    rng=rng,
                )
            ]
            if rng.random() < 0.5:
                rows.append(
                    _metric(
                        ticket_id,
                        "resolution",
                        policy,
                        "smartertools",
                        created,
                        timedelta(hours=27),
                        running=not done,
                        paused=status == "pending",
                        now=now,
                        rng=rng,
                    )
                )
            running = [m for m in rows if m["stopped_at"] is None]
            ticking = [m["breach_at"] for m in running if m["status"] != "paused"]
            key = min(ticking, default=PAUSED if running else NO_BREACH)
            names = sorted({m["calendar"] for m in running})
            calendars.extend(
                {
                    "ticket_id": ticket_id,
                    "calendar": n,
                    "queue_breach_at": key,
                    "created_at": created,
                }
                for n in names
            )
            tickets.append(
                {
                    "id": ticket_id,
                    "policy": policy,
                    "current_policy": policy,
                    "created_at": created,
                    "account": None,
                    "product": None,
                    "version": None,
                    "legacy": None,
                    "status": status,
                    "received_at": created,
                    "queue_breach_at": key,
                    "stopped_late": any(
                        m["stopped_at"] is not None and m["status"] == "breached" for m in rows
                    ),
                    "queue_calendars": "\n".join(names),
                }
            )
            metrics.extend(rows)
        yield tickets, metrics, calendars


def _metric(
    ticket_id: str,
    metric: str,
    policy: str,
    calendar: str,
    created: datetime,
    budget: timedelta,
    *,
    running: bool,
    now: datetime,
    rng: random.Random,
    paused: bool = False,
) -> dict[str, Any]:
    breach_at = created + budget * rng.uniform(1.0, 2.5)  # business time runs slower
    stopped_at = None
    if running:
        status = "paused" if paused else "active" if breach_at >= now else "breached"
    else:
        stopped_at = created + budget * rng.uniform(0.1, 3.0)
        status = "achieved" if stopped_at <= breach_at else "breached"
    return {
        "ticket_id": ticket_id,
        "metric": metric,
        "cycle": 1,
        "status": status,
        "policy": policy,
        "calendar": calendar,
        "started_at": created,
        "target_at": None,
        "breach_at": breach_at,
        "stopped_at": stopped_at,
        "business_elapsed_s": 0.0,
        "updated_at": created,
    }


def seed(url: str, count: int, now: datetime) -> float:
    """Migrate the database at `url` and bulk-insert `count` tickets; returns the seconds."""
    began = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for tickets, metrics, calendars in fixture_rows(count, now):
                conn.execute(sa.insert(Ticket.__table__), tickets)
                conn.execute(sa.insert(TicketMetric.__table__), metrics)
                conn.execute(sa.insert(TicketQueueCalendar.__table__), calendars)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return time.perf_counter() - began


# --- the measurements ----------------------------------------------------------------------


def deep_cursor(url: str, params: dict[str, str], now: datetime) -> str | None:
    """A cursor half-way down the listing of `params`, read from the database."""
    listing = replace(listing_of(params), limit=10**9)
    query = page_query(listing).params(page_params(listing, now))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            matches = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            row = conn.execute(query.offset(matches // 2).limit(1)).first()
    finally:
        engine.dispose()
    if matches < 2 or row is None:
        return None
    return encode_cursor(After(listing.order, listing.metric, row.key, row.id))


def interleaved(
    clients: dict[int, httpx.Client], params: dict[int, dict[str, str]], requests: int
) -> tuple[dict[int, list[float]], dict[int, int]]:
    """Latencies of each size's request, taken in turns, so that both sizes see the same load
    on the machine (a shared machine's noise would otherwise decide the comparison); and the
    items on each size's page (fewer items cost less to answer)."""
    items = {}
    for count, client in clients.items():
        answer = client.get("/v1/tickets", params=params[count])  # warm up
        answer.raise_for_status()
        items[count] = len(answer.json()["items"])
    times: dict[int, list[float]] = {count: [] for count in clients}
    for _ in range(requests):
        for count, client in clients.items():
            began = time.perf_counter()
            answer = client.get("/v1/tickets", params=params[count])
            times[count].append(time.perf_counter() - began)
            answer.raise_for_status()
    return times, items


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def plans(url: str, now: datetime) -> None:
    """Each listing's plan, first page and deep page; on PostgreSQL with the rows each step
    really read (EXPLAIN ANALYZE)."""
    engine = make_engine(url)
    try:
        for name, params in VARIANTS.items():
            first = listing_of(params)
            cursor = deep_cursor(url, params, now)
            pages = [("first", first)]
            if cursor is not None:
                pages.append(("deep", replace(first, after=decode_cursor(cursor))))
            for page, listing in pages:
                query = page_query(listing).params(page_params(listing, now))
                sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
                prefix = (
                    "EXPLAIN QUERY PLAN "
                    if engine.dialect.name == "sqlite"
                    else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
                )
                with engine.connect() as conn:
                    rows = conn.exec_driver_sql(prefix + sql).all()
                print(f"  plan, {name}, {page} page:")
                for row in rows:
                    print(f"    {row[-1]}")
    finally:
        engine.dispose()


def listing_of(params: dict[str, str]) -> Any:
    return make_listing(
        policy=params.get("policy"),
        calendar=params.get("calendar"),
        metric=params.get("metric"),
        breached=None if "breached" not in params else params["breached"] == "true",
        order=params.get("order", "breach_at"),
        limit=PAGE_LIMIT,
    )


def servers(stack: ExitStack, urls: dict[int, str]) -> dict[int, str]:
    """A server per size, started side by side (each takes seconds); stopped by `stack`."""
    managers = {count: server(url) for count, url in urls.items()}
    with ThreadPoolExecutor(max_workers=len(managers)) as pool:
        started = {count: pool.submit(cm.__enter__) for count, cm in managers.items()}
    bases = {}
    for count, future in started.items():
        if future.exception() is None:
            stack.push(managers[count].__exit__)
            bases[count] = future.result()
    for future in started.values():
        future.result()  # the first failure, once the servers that did start will be stopped
    return bases


def measure(label: str, urls: dict[int, str], sizes: Sizes, show_plans: bool) -> list[str]:
    """Seed each size, serve each, then time every listing's first and deep page in turns."""
    now = datetime.now(UTC)
    for count, url in urls.items():
        seconds = seed(url, count, now)
        print(f"{label}: {count:,} tickets seeded in {seconds:.1f} s", flush=True)
        if show_plans:
            plans(url, now)
    lines = []
    with ExitStack() as stack:
        clients = {
            count: stack.enter_context(httpx.Client(base_url=base, timeout=60))
            for count, base in servers(stack, urls).items()
        }
        for name, params in VARIANTS.items():
            first = {**params, "limit": str(PAGE_LIMIT)}
            cursors = {count: deep_cursor(url, params, now) for count, url in urls.items()}
            pages = {"first": dict.fromkeys(urls, first)}
            if all(cursors.values()):
                pages["deep"] = {count: {**first, "cursor": str(c)} for count, c in cursors.items()}
            for page, params_by_size in pages.items():
                times, items = interleaved(clients, params_by_size, sizes.requests)
                cells = "".join(
                    " {:>5} {:>8.2f} {:>7.2f}".format(items[count], *percentiles(times[count]))
                    for count in urls
                )
                lines.append(f"{label:<10}  {name:<20} {page:<5}{cells}")
                print(lines[-1], flush=True)
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="1,000 and 1,000,000 tickets")
    parser.add_argument("--quick", action="store_true", help="a few seconds (smoke test)")
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL if args.full else DEFAULT
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        urls = {n: f"sqlite:///{Path(folder) / f'queue-{n}.db'}" for n in sizes.counts}
        lines += measure("sqlite", urls, sizes, args.plans)
    if not args.sqlite_only:
        with ExitStack() as stack:
            databases = {n: stack.enter_context(postgres_database()) for n in sizes.counts}
            pg_urls = {n: url for n, url in databases.items() if url is not None}
            if len(pg_urls) == len(sizes.counts):
                lines += measure("postgresql", pg_urls, sizes, args.plans)
    print(f"\nGET /v1/tickets?limit={PAGE_LIMIT}: {sizes.requests} requests each, sizes in turns")
    print(" " * 38 + "".join(f" {f'{n:,} tickets':>22}" for n in sizes.counts))
    heads = "".join(f" {'items':>5} {'p50 ms':>8} {'p99 ms':>7}" for _ in sizes.counts)
    print(f"{'database':<10}  {'listing':<20} {'page':<5}{heads}")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
