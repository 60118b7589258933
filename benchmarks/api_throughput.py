"""HTTP API throughput: `sla-engine serve` in a subprocess, load from this process (httpx).

Measures, on SQLite and then on a fresh PostgreSQL database:
- deadlines/s through `POST /v1/deadlines/batch` (10,000 items a request),
- requests/s of single `POST /v1/deadlines`,
- ticket events/s ingested through `POST /v1/tickets/{id}/events` (each one a transaction that
  applies the event to the ticket's saved clock and writes what changed),
- the ratio of the two single routes: events/s over single-deadline req/s, both with the raw
  client from the same number of threads on the same server, one after the other; the
  deadline route is the stack's own ceiling (HTTP, routing, a pydantic body, a JSON answer),
  so the ratio says how much an event costs beyond it. The server's CPU per request of each
  is read from /proc.

The server is one uvicorn worker (one process). The load generator runs several threads, each
with its own keep-alive connection; its own CPU use is printed, because on a small machine the
client competes with the server for cores.

    python benchmarks/api_throughput.py            # full run
    python benchmarks/api_throughput.py --quick    # a few seconds, for smoke tests
    python benchmarks/api_throughput.py --ratio    # only the events / deadline ratio
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch_db import optional_pg_database as postgres_database

CLI = str(Path(sys.executable).parent / "sla-engine")
TARGETS = {
    "batch deadlines/s": 200_000.0,
    "single deadline req/s (httpx)": 1_500.0,
    "single deadline req/s (raw)": 1_500.0,
    "ticket events/s (httpx)": 1_000.0,
    "ticket events/s (raw)": 1_000.0,
    "  same, serve --workers 2": 1_000.0,
}
WORKERS = 2
BATCH_ITEMS = 10_000
HEADERS = {"content-type": "application/json"}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
TICKS = os.sysconf("SC_CLK_TCK")
RATIO_AIM = 0.40
RATIO_ROUNDS = 3


@dataclass(frozen=True)
class Sizes:
    batch_requests: int
    single_requests: int
    tickets: int
    events: int
    threads: int


FULL = Sizes(batch_requests=30, single_requests=3_000, tickets=100, events=3_000, threads=4)
QUICK = Sizes(batch_requests=2, single_requests=200, tickets=10, events=100, threads=2)


@dataclass(frozen=True)
class Measure:
    rate: float
    seconds: float
    client_cpu_s: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(database_url: str, workers: int = 1) -> Iterator[str]:
    """`sla-engine serve` on a free port; yields its base URL, SIGTERMs it afterwards."""
    with served(database_url, workers) as (base, _pid):
        yield base


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def served(database_url: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    """`server`, yielding (base URL, pid of the serving process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                CLI,
                "serve",
                "--port",
                str(port),
                "--database-url",
                database_url,
                "--workers",
                str(workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited: {_tail(log)}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start within 60 s")
                time.sleep(0.1)
            try:
                yield base, proc.pid
            except RuntimeError:
                print(f"server log (tail):\n{_tail(log)}", file=sys.stderr)
                raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-size:]


def timed_in_threads(
    worker: Callable[[Any], None], chunks: list[Any], requests: int, errors: list[str]
) -> Measure:
    """Run `worker` over each chunk in its own thread; the rate of `requests`, all must be 2xx."""
    cpu = time.process_time()
    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return Measure(requests / seconds, seconds, time.process_time() - cpu)


def run_threads(
    base: str, jobs: list[bytes | tuple[str, bytes]], threads: int, path: str = ""
) -> Measure:
    """POST every job (body, or (path, body)) from `threads` keep-alive clients; all must be 2xx."""
    chunks = [jobs[i::threads] for i in range(threads)]
    errors: list[str] = []

    def worker(chunk: list[bytes | tuple[str, bytes]]) -> None:
        transport = httpx.HTTPTransport(socket_options=NODELAY)
        with httpx.Client(
            base_url=base, timeout=120, headers=HEADERS, transport=transport
        ) as client:
            for job in chunk:
                target, body = (path, job) if isinstance(job, bytes) else job
                answer = client.post(target, content=body)
                if answer.status_code >= 300:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")

    return timed_in_threads(worker, chunks, len(jobs), errors)


def run_raw_threads(
    base: str, jobs: list[bytes | tuple[str, bytes]], threads: int, path: str = ""
) -> Measure:
    """Like `run_threads`, with a minimal keep-alive HTTP/1.1 client on plain sockets.

    httpx spends about half a millisecond of CPU per request; on a two-core machine that, not
    the server, caps the rate. This client (about 0.03 ms a request) shows what the server
    itself sustains.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    chunks = [jobs[i::threads] for i in range(threads)]
    errors: list[str] = []

    def worker(chunk: list[bytes | tuple[str, bytes]]) -> None:
        with socket.create_connection((host, int(port))) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = sock.makefile("rb")
            for job in chunk:
                target, body = (path, job) if isinstance(job, bytes) else job
                head = (
                    f"POST {target} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json"
                    f"\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                sock.sendall(head + body)
                status = int(stream.readline().split()[1])
                length = 0
                while (line := stream.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                answer = stream.read(length)
                if status >= 300:
                    errors.append(f"{status} {answer[:200]!r}")

    return timed_in_threads(worker, chunks, len(jobs), errors)


def random_starts(rng: random.Random, n: int) -> list[str]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [(base + timedelta(seconds=rng.randrange(0, 365 * 86400))).isoformat() for _ in range(n)]


def bench_batch(base: str, sizes: Sizes, rng: random.Random) -> Measure:
    bodies = []
    for _ in range(min(sizes.batch_requests, 5)):
        items = [{"start": s, "duration": "4h"} for s in random_starts(rng, BATCH_ITEMS)]
        bodies.append(json.dumps({"calendar": "smartertools", "items": items}).encode())
    jobs = [bodies[i % len(bodies)] for i in range(sizes.batch_requests)]
    run_threads(base, jobs[:1], 1, "/v1/deadlines/batch")  # warm-up: compile the year
    measure = run_threads(base, jobs, 2, "/v1/deadlines/batch")
    return Measure(measure.rate * BATCH_ITEMS, measure.seconds, measure.client_cpu_s)


def bench_single(base: str, sizes: Sizes, rng: random.Random) -> Measure:
    jobs = [
        json.dumps({"calendar": "smartertools", "start": s, "duration": "4h"}).encode()
        for s in random_starts(rng, sizes.single_requests)
    ]
    run_threads(base, jobs[:50], 1, "/v1/deadlines")
    return run_threads(base, jobs, 2, "/v1/deadlines")


def bench_single_raw(base: str, sizes: Sizes, rng: random.Random) -> Measure:
    jobs: list[bytes | tuple[str, bytes]] = [
        json.dumps({"calendar": "smartertools", "start": s, "duration": "4h"}).encode()
        for s in random_starts(rng, sizes.single_requests)
    ]
    return run_raw_threads(base, jobs, 2, "/v1/deadlines")


def event_jobs(base: str, sizes: Sizes) -> list[bytes | tuple[str, bytes]]:
    """Open `sizes.tickets` new tickets; the event requests for them, tickets interleaved."""
    created = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    tickets = [f"B-{uuid.uuid4().hex[:8]}-{i}" for i in range(sizes.tickets)]
    run_threads(
        base,
        [
            json.dumps({"id": t, "policy": "standard", "created_at": created.isoformat()}).encode()
            for t in tickets
        ],
        sizes.threads,
        "/v1/tickets",
    )
    jobs: list[bytes | tuple[str, bytes]] = []
    for n in range(sizes.events):
        ticket = tickets[n % len(tickets)]
        kind = ("customer_reply", "agent_reply")[(n // len(tickets)) % 2]
        at = created + timedelta(minutes=1 + n // len(tickets))
        body = {"event_id": f"ev-{n}", "type": kind, "occurred_at": at.isoformat()}
        jobs.append((f"/v1/tickets/{ticket}/events", json.dumps(body).encode()))
    return jobs


def bench_events(base: str, sizes: Sizes, rng: random.Random) -> Measure:
    # Interleaved tickets: concurrent threads mostly write different tickets.
    return run_threads(base, event_jobs(base, sizes), sizes.threads)


def bench_events_raw(base: str, sizes: Sizes, rng: random.Random) -> Measure:
    return run_raw_threads(base, event_jobs(base, sizes), sizes.threads)


@dataclass(frozen=True)
class Ratio:
    """Single events against single deadlines, same client, threads and server."""

    deadlines: Measure
    events: Measure
    deadline_cpu_ms: float
    event_cpu_ms: float
    event_backend_cpu_ms: float = 0.0
    """PostgreSQL's backends' CPU per event (0 on SQLite)."""

    @property
    def ratio(self) -> float:
        return self.events.rate / self.deadlines.rate

    @property
    def cpu_ratio(self) -> float:
        """The same ratio from the server's CPU per request (steadier on a shared machine)."""
        return self.deadline_cpu_ms / self.event_cpu_ms


def backend_cpu_seconds(url: str) -> float:
    """CPU time used so far by the PostgreSQL backends now connected to `url`'s database
    (the server's pool; 0 on SQLite, or when the backends' /proc entries cannot be read)."""
    if not url.startswith("postgresql"):
        return 0.0
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalars()
            total = 0.0
            for pid in pids:
                with suppress(OSError):
                    total += cpu_seconds(int(pid))
            return total
    finally:
        engine.dispose()


def bench_ratio(url: str, sizes: Sizes, rng: random.Random) -> Ratio:
    """Raw-client single deadlines and single events from `sizes.threads` threads on one
    server (one worker), in alternating rounds (so that the load of a shared machine weighs
    on both alike); the server's CPU per request of each."""
    with served(url) as (base, pid):
        deadlines: list[bytes | tuple[str, bytes]] = [
            json.dumps({"calendar": "smartertools", "start": s, "duration": "4h"}).encode()
            for s in random_starts(rng, sizes.single_requests)
        ]
        run_raw_threads(base, deadlines[:50], 1, "/v1/deadlines")  # warm-up
        events = event_jobs(base, sizes)
        # s, client CPU, server CPU, PostgreSQL backends' CPU
        totals = {"deadlines": [0.0] * 4, "events": [0.0] * 4}
        for round_ in range(RATIO_ROUNDS):
            for name, jobs, path in (
                ("deadlines", deadlines, "/v1/deadlines"),
                ("events", events, ""),
            ):
                share = jobs[
                    round_ * len(jobs) // RATIO_ROUNDS : (round_ + 1) * len(jobs) // RATIO_ROUNDS
                ]
                cpu = cpu_seconds(pid)
                backends = backend_cpu_seconds(url)
                measure = run_raw_threads(base, share, sizes.threads, path)
                total = totals[name]
                total[0] += measure.seconds
                total[1] += measure.client_cpu_s
                total[2] += cpu_seconds(pid) - cpu
                total[3] += backend_cpu_seconds(url) - backends
    made = {
        name: Measure(count / total[0], total[0], total[1])
        for name, count, total in (
            ("deadlines", len(deadlines), totals["deadlines"]),
            ("events", len(events), totals["events"]),
        )
    }
    return Ratio(
        made["deadlines"],
        made["events"],
        totals["deadlines"][2] * 1000 / len(deadlines),
        totals["events"][2] * 1000 / len(events),
        totals["events"][3] * 1000 / len(events),
    )


def run_ratio(label: str, url: str, sizes: Sizes) -> Ratio:
    result = bench_ratio(url, sizes, random.Random(2026))
    print(
        f"  {label:<10} single deadline req/s {result.deadlines.rate:>7,.0f} "
        f"({result.deadline_cpu_ms:.2f} ms server CPU)   ticket events/s "
        f"{result.events.rate:>7,.0f} ({result.event_cpu_ms:.2f} ms server CPU"
        + (
            f" + {result.event_backend_cpu_ms:.2f} ms PostgreSQL backends"
            if result.event_backend_cpu_ms
            else ""
        )
        + ")   "
        f"ratio {result.ratio:.0%} (aim {RATIO_AIM:.0%}; by server CPU {result.cpu_ratio:.0%})",
        flush=True,
    )
    return result


BENCHES: dict[str, Callable[[str, Sizes, random.Random], Measure]] = {
    "batch deadlines/s": bench_batch,
    "single deadline req/s (httpx)": bench_single,
    "single deadline req/s (raw)": bench_single_raw,
    "ticket events/s (httpx)": bench_events,
    "ticket events/s (raw)": bench_events_raw,
}


def run_database(label: str, url: str, sizes: Sizes, ratio_only: bool) -> dict[str, Measure]:
    ratio = run_ratio(label, url, sizes)
    results = {
        "ratio deadline req/s (raw)": ratio.deadlines,
        "ratio ticket events/s (raw)": ratio.events,
    }
    if ratio_only:
        return results
    rng = random.Random(2026)
    runs = [(1, name, bench) for name, bench in BENCHES.items()]
    runs.append((WORKERS, f"  same, serve --workers {WORKERS}", bench_events_raw))
    for workers in sorted({w for w, _, _ in runs}):
        with server(url, workers) as base:
            for _, name, bench in (r for r in runs if r[0] == workers):
                results[name] = m = bench(base, sizes, rng)
                print(
                    f"  {label:<10} {name:<30} {m.rate:>12,.0f}   ({m.seconds:.2f} s wall, "
                    f"client CPU {m.client_cpu_s:.2f} s)",
                    flush=True,
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--ratio", action="store_true", help="only single events against single deadlines"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    print(
        f"API throughput ({'quick' if args.quick else 'full'} run; one uvicorn worker unless "
        f"said; "
        f"{os.cpu_count()} CPUs; load from {sizes.threads} client threads)"
    )
    table: dict[str, dict[str, Measure]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = run_database(
            "sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", sizes, args.ratio
        )
    if not args.sqlite_only:
        with postgres_database() as pg_url:
            if pg_url is not None:
                table["postgresql"] = run_database("postgresql", pg_url, sizes, args.ratio)
    columns = list(table)
    print()
    print(f"{'events/s over deadline req/s':<31}", end="")
    for c in columns:
        events, deadlines = (
            table[c]["ratio ticket events/s (raw)"],
            table[c]["ratio deadline req/s (raw)"],
        )
        print(f"{events.rate / deadlines.rate:>13.0%} ", end="")
    print(f"{RATIO_AIM:>14.0%}  (raw client, {sizes.threads} threads, one server)")
    if args.ratio:
        return 0
    print("(httpx: the load generator is httpx; raw: a minimal socket client, so that the")
    print(" client's own CPU, on the same cores, does not cap the server's figure)")
    print(f"{'measure':<31}" + "".join(f"{c:>14}" for c in columns) + f"{'target':>14}")
    for name, target in TARGETS.items():
        cells = "".join(
            f"{table[c][name].rate:>8,.0f} {table[c][name].rate / target:>4.1f}x" for c in columns
        )
        note = " (on SQLite)" if "events" in name or "workers" in name else ""
        print(f"{name:<31}{cells}{target:>14,.0f}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
