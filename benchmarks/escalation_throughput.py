"""Escalation throughput: 100,000 open tickets, 20,000 escalations due within one minute.

Real `sla-engine worker` processes deliver to a local receiver (a separate process, a
minimal keep-alive HTTP server on 127.0.0.1). Two runs per setup:

- burst: 20,000 escalations due at once (inside one minute) among 100,000 open tickets'
  timers -> deliveries/s per run, and the lag from due time to delivery;
- steady: 200 escalations due per second -> lag p50 / p99 / max (target: p99 <= 1 s).

Setups: SQLite (one worker), PostgreSQL (one worker, two workers). Counted per run: lost
(not delivered) and doubled (a webhook-id received twice), and the CPU time per delivery of
the workers (start-up and idle polling included) and of the receiver, which shows whether
the receiver, not the engine, is the bottleneck. `--quick` runs a tenth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch_db import scratch_database

from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.storage.db import make_engine, upgrade

CLI = str(Path(sys.executable).with_name("sla-engine"))


# -- the receiver (its own process) ---------------------------------------------------------


class _Receiver(asyncio.Protocol):
    seen: ClassVar[Counter[str]] = Counter()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length :]
            if head[0].startswith("GET /stats"):
                body = json.dumps(
                    {
                        "received": sum(self.seen.values()),
                        "unique": len(self.seen),
                        "doubled": sum(1 for c in self.seen.values() if c > 1),
                    }
                )
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body.encode()
                )
                continue
            if head[0].startswith("POST /reset"):
                self.seen.clear()
            else:
                self.seen[headers.get("webhook-id", "")] += 1
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


def run_receiver(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class ReceiverProcess:
    base: str
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds the receiver process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's finished (waited-for) children: the workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def receiver() -> Iterator[ReceiverProcess]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(port)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    try:
        yield ReceiverProcess(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def receiver_stats(base: str) -> dict[str, int]:
    import httpx

    return httpx.get(f"{base}/stats").json()  # type: ignore[no-any-return]


# -- databases, seeding, workers ------------------------------------------------------------


def seed(url: str, due: list[datetime], first: int = 0) -> None:
    """Pending timers of tickets T-first.., one per instant of `due`."""
    engine = make_engine(url)
    table = sa.Table(EscalationTimer.__tablename__, EscalationTimer.metadata)
    targets = json.dumps([{"to": "oncall"}])
    rows = []
    for i, due_at in enumerate(due, start=first):
        rows.append(
            {
                "ticket_id": f"T-{i}",
                "metric": "first_response",
                "cycle": 1,
                "threshold": "100%",
                "due_at": due_at,
                "status": "pending",
                "generation": 1,
                "policy": "standard",
                "calendar": "24x7",
                "breach_at": due_at,
                "targets": targets,
                "created_at": due_at,
                "updated_at": due_at,
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(sa.insert(table), rows[start : start + 5000])
    engine.dispose()


def reset(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.delete(EscalationDelivery))
        conn.execute(sa.delete(EscalationTimer))
    engine.dispose()


@contextmanager
def workers(url: str, base: str, count: int, folder: Path) -> Iterator[None]:
    config = folder / "bench.toml"
    config.write_text(
        f'[[destinations]]\nname = "oncall"\ntype = "webhook"\n'
        f'url = "{base}/hook"\nsecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n'
    )
    env = {
        **os.environ,
        "SLA_ENGINE_ESCALATION_POLL_S": "0.1",
        "SLA_ENGINE_ESCALATION_CLAIM_BATCH": "500",
        "SLA_ENGINE_ESCALATION_SEND_TIMEOUT_S": "1",
        "SLA_ENGINE_ESCALATION_CONCURRENCY": "4",
    }
    procs = [
        subprocess.Popen(
            [CLI, "worker", "--config", str(config), "--database-url", url],
            env=env,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        if "running" not in line:
            raise RuntimeError(line + proc.stderr.read().decode())
        threading.Thread(target=proc.stderr.read, daemon=True).start()
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)


def wait_delivered(url: str, expected: int, timeout: float) -> None:
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    d = EscalationDelivery
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                sent = conn.scalar(sa.select(sa.func.count()).where(d.status == "sent"))
            if sent is not None and sent >= expected:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()


def lags(url: str) -> list[float]:
    engine = make_engine(url)
    d = EscalationDelivery
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.__table__.c.due_at, d.__table__.c.sent_at).where(d.status == "sent")
        ).all()
    engine.dispose()
    return sorted((sent - due).total_seconds() for due, sent in rows)


def quantile(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)] if values else float("nan")


def run(
    kind: str,
    count: int,
    *,
    open_tickets: int,
    burst: int,
    steady_s: int,
    rate: int,
    receiving: ReceiverProcess,
) -> list[dict[str, Any]]:
    base = receiving.base
    results = []
    with scratch_database(kind, "sla_escbench") as url, tempfile.TemporaryDirectory() as folder:
        upgrade(url)
        for scenario in ("burst", "steady"):
            reset(url)
            import httpx

            httpx.post(f"{base}/reset")
            n_due = burst if scenario == "burst" else steady_s * rate
            far = datetime.now(UTC) + timedelta(days=1)
            seed(url, [far] * (open_tickets - n_due), first=n_due)
            workers_cpu, receiver_cpu = children_cpu_s(), receiving.cpu_s()
            with workers(url, base, count, Path(folder)):
                start = datetime.now(UTC) + timedelta(seconds=2)
                if scenario == "burst":
                    due = [start] * burst
                else:
                    due = [start + timedelta(seconds=i / rate) for i in range(n_due)]
                seed(url, due)
                wait_delivered(url, len(due), timeout=max(120.0, len(due) / 50))
                time.sleep(0.5)
                receiver_cpu = receiving.cpu_s() - receiver_cpu
            workers_cpu = children_cpu_s() - workers_cpu
            found = lags(url)
            stats = receiver_stats(base)
            span = max(found) if found else float("nan")
            results.append(
                {
                    "database": kind,
                    "workers": count,
                    "scenario": scenario,
                    "due": len(due),
                    "delivered": len(found),
                    "deliveries_per_s": round(len(found) / span, 1)
                    if scenario == "burst"
                    else None,
                    "lag_p50_s": round(quantile(found, 0.5), 3),
                    "lag_p99_s": round(quantile(found, 0.99), 3),
                    "lag_max_s": round(found[-1], 3) if found else None,
                    "lost": len(due) - stats["unique"],
                    "doubled": stats["doubled"],
                    "worker_cpu_ms_per_delivery": round(workers_cpu / max(len(found), 1) * 1e3, 3),
                    "receiver_cpu_ms_per_delivery": round(
                        receiver_cpu / max(len(found), 1) * 1e3, 3
                    ),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the load")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args(argv)
    if args.receiver:
        run_receiver(args.receiver)
        return 0
    scale = 10 if args.quick else 1
    sizes = {
        "open_tickets": 100_000 // scale,
        "burst": 20_000 // scale,
        "steady_s": 30 // (3 if args.quick else 1),
        "rate": 200,
    }
    setups = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    if args.only:
        setups = [s for s in setups if s[0] == args.only]
    with receiver() as receiving:
        for kind, count in setups:
            run(kind, count, receiving=receiving, **sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
