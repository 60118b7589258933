"""`POST /v1/batch` throughput beside single `POST /v1/tickets/{id}/events`, same server, same
raw-socket client (`api_throughput.run_raw_threads`), on SQLite and PostgreSQL.

Both load the same kind of work: tickets interleaved, replies alternating, each event a new
one. The reference is the single-event route measured in the same run by the API benchmark's
own function. Last, the items a batch commits per transaction (`ingest.batch.SLICE`) are
compared in-process on SQLite, without HTTP.

    python benchmarks/batch_throughput.py            # full run
    python benchmarks/batch_throughput.py --quick    # a few seconds, for smoke tests
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import (
    Measure,
    Sizes,
    bench_events_raw,
    postgres_database,
    run_raw_threads,
    server,
)

SINGLE = Sizes(batch_requests=0, single_requests=0, tickets=100, events=3_000, threads=4)
SINGLE_QUICK = Sizes(batch_requests=0, single_requests=0, tickets=10, events=100, threads=2)


@dataclass(frozen=True)
class BatchSizes:
    tickets: int
    events: int
    per_request: tuple[int, ...]
    threads: int


FULL = BatchSizes(tickets=1_000, events=40_000, per_request=(1_000, 10_000), threads=2)
"""Each thread's 20,000 events make 20 requests of 1,000 or 2 of 10,000."""
QUICK = BatchSizes(tickets=20, events=400, per_request=(100,), threads=2)
SLICES = (25, 250, 1_000)


def ticket_bodies(count: int) -> tuple[list[str], list[dict[str, str]]]:
    created = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    ids = [f"BB-{uuid.uuid4().hex[:8]}-{i}" for i in range(count)]
    return ids, [{"id": t, "policy": "standard", "created_at": created.isoformat()} for t in ids]


def event_bodies(ids: list[str], count: int) -> list[dict[str, str]]:
    """The API benchmark's events: tickets interleaved, replies alternating, a minute apart."""
    created = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    bodies = []
    for n in range(count):
        kind = ("customer_reply", "agent_reply")[(n // len(ids)) % 2]
        at = created + timedelta(minutes=1 + n // len(ids))
        bodies.append(
            {
                "ticket_id": ids[n % len(ids)],
                "event_id": f"ev-{n}",
                "type": kind,
                "occurred_at": at.isoformat(),
            }
        )
    return bodies


def bench_batch(base: str, sizes: BatchSizes, per_request: int) -> Measure:
    """Each client thread posts the events of its own tickets, in order: events of one ticket
    arriving out of order (late) cost a replay from a checkpoint, which would measure the
    clock rather than the route."""
    ids, tickets = ticket_bodies(sizes.tickets)
    created = run_raw_threads(base, [json.dumps({"tickets": tickets}).encode()], 1, "/v1/batch")
    assert created.rate > 0
    events = event_bodies(ids, sizes.events)
    mine = {ticket: n % sizes.threads for n, ticket in enumerate(ids)}
    per_thread: list[list[bytes]] = []
    for thread in range(sizes.threads):
        own = [e for e in events if mine[e["ticket_id"]] == thread]
        per_thread.append(
            [
                json.dumps({"events": own[i : i + per_request]}).encode()
                for i in range(0, len(own), per_request)
            ]
        )
    # run_raw_threads gives thread t the jobs t, t + threads, ...: interleave accordingly
    jobs: list[bytes | tuple[str, bytes]] = [
        body for bodies in zip(*per_thread, strict=True) for body in bodies
    ]
    measure = run_raw_threads(base, jobs, sizes.threads, "/v1/batch")
    return Measure(measure.rate * len(events) / len(jobs), measure.seconds, measure.client_cpu_s)


def run_database(label: str, url: str, single: Sizes, sizes: BatchSizes) -> list[str]:
    rows = []
    with server(url) as base:
        reference = bench_events_raw(base, single, random.Random(2026))
        rows.append(f"  {label:<11} {'single POST .../events':<30} {reference.rate:>10,.0f}   1.0x")
        for per_request in sizes.per_request:
            m = bench_batch(base, sizes, per_request)
            name = f"POST /v1/batch, {per_request:,}/request"
            rows.append(
                f"  {label:<11} {name:<30} {m.rate:>10,.0f} {m.rate / reference.rate:>5.1f}x"
            )
            print(rows[-1], flush=True)
    return rows


def slice_sizes(folder: Path, events: int) -> None:
    """Events/s of the batch runner (no HTTP) by items per transaction, on SQLite."""
    from sla_engine.composition import build_services
    from sla_engine.config import load_config
    from sla_engine.ingest.batch import BatchRunner

    print("items per transaction (in-process, SQLite, no HTTP):")
    for size in SLICES:
        url = f"sqlite:///{folder / f'slice-{size}.db'}"
        services = build_services(load_config(None, env={}, database_url=url))
        try:
            runner = BatchRunner(
                services.tickets, services.sessionmaker, services.clock, slice_size=size
            )
            ids, tickets = ticket_bodies(max(10, events // 30))
            runner.run(tickets, [])
            bodies = event_bodies(ids, events)
            began = time.perf_counter()
            answer = runner.run([], bodies)
            seconds = time.perf_counter() - began
            assert all(r["status"] == 201 for r in answer["events"])
        finally:
            services.close()
        print(f"  {size:>6,} items/transaction {events / seconds:>10,.0f} events/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    single, sizes = (SINGLE_QUICK, QUICK) if args.quick else (SINGLE, FULL)
    print(
        f"batch throughput ({'quick' if args.quick else 'full'} run; one uvicorn worker; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; raw-socket client)"
    )
    print(f"  {'database':<11} {'measure':<30} {'events/s':>10} {'ratio':>6}")
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run_database("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", single, sizes)
        if not args.sqlite_only:
            with postgres_database() as url:
                if url is not None:
                    rows += run_database("postgresql", url, single, sizes)
        print()
        print(f"  {'database':<11} {'measure':<30} {'events/s':>10} {'ratio':>6}")
        print("\n".join(rows))
        print("(ratio: over the single-event route of the same server, measured in this run)")
        print()
        slice_sizes(Path(tmp), 600 if args.quick else 6_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
