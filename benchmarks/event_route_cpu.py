"""Server CPU per ticket event through `POST /v1/tickets/{id}/events`, on SQLite and PostgreSQL.

`sla-engine serve` (one worker) runs in a subprocess; one client posts events one at a time
over a keep-alive raw socket, and the server process's CPU time (user + system, from
/proc) is read before and after. Two figures:

- fresh tickets: `--tickets` tickets get 10 events each (the cost of a short log);
- a long log: one ticket's events `--long` .. `--long` + 200 (filled by posting first).

Each on SQLite and, with `--postgresql`, on a fresh PostgreSQL database too.

Run it from a checkout, or with PYTHONPATH=<other checkout> to measure another commit (the
server is started with this interpreter and that path, in the temporary folder, so that the
working directory's `sla_engine` does not come first).

    python benchmarks/event_route_cpu.py
    python benchmarks/event_route_cpu.py --quick
    python benchmarks/event_route_cpu.py --postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import postgres_database

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
CYCLE = ("customer_reply", "agent_reply", "pending", "open")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def server(url: str) -> Iterator[tuple[int, int]]:
    """`sla-engine serve` on a free port: yields (port, pid)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    code = "import sys; from sla_engine.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", code, "serve", "--port", str(port), "--database-url", url]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serve did not start") from None
                time.sleep(0.1)
        time.sleep(1.0)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


class Client:
    """HTTP/1.1 keep-alive over a raw socket (the client's own cost stays small)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = self.sock.makefile("rb")

    def post(self, path: str, body: dict[str, object]) -> int:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + data)
        status = int(self.stream.readline().split()[1])
        length = 0
        while (line := self.stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        answer = self.stream.read(length)
        if status >= 300:
            raise RuntimeError(f"{status} {answer[:300]!r}")
        return status


def event(i: int) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "type": CYCLE[i % len(CYCLE)],
        "occurred_at": (T0 + timedelta(seconds=30 * (i + 1))).isoformat(),
    }


def ticket(client: Client, ticket_id: str) -> None:
    client.post(
        "/v1/tickets", {"id": ticket_id, "policy": "standard", "created_at": T0.isoformat()}
    )


def measure(pid: int, work: list[tuple[str, dict[str, object]]], client: Client) -> float:
    """Server CPU ms per request of `work`."""
    before = cpu_seconds(pid)
    for path, body in work:
        client.post(path, body)
    return (cpu_seconds(pid) - before) * 1000 / len(work)


def measure_database(url: str, tickets: int, long: int) -> tuple[float, float]:
    """(ms per event of fresh tickets, ms per event of the long log) on the database `url`."""
    with server(url) as (port, pid):
        client = Client(port)
        ids = [f"F-{n}" for n in range(tickets)]
        for ticket_id in ids:
            ticket(client, ticket_id)
        work = [(f"/v1/tickets/{t}/events", event(i)) for i in range(10) for t in ids]
        fresh = measure(pid, work, client)
        ticket(client, "LONG")
        for i in range(long):
            client.post("/v1/tickets/LONG/events", event(i))
        far = measure(
            pid,
            [("/v1/tickets/LONG/events", event(i)) for i in range(long, long + 200)],
            client,
        )
    return fresh, far


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tickets", type=int)
    parser.add_argument("--long", type=int, help="first timed event of the long log")
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL too")
    args = parser.parse_args(argv)
    tickets = args.tickets or (50 if args.quick else 300)
    long = args.long or (300 if args.quick else 2_000)
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'route-cpu.db'}"
        figures["SQLite"] = measure_database(url, tickets, long)
    if args.postgresql:
        with postgres_database() as pg_url:
            if pg_url is not None:
                figures["PostgreSQL"] = measure_database(pg_url, tickets, long)
    print("server CPU per event, POST /v1/tickets/{id}/events (one worker)")
    for name, (fresh, far) in figures.items():
        print(f"  {name:<10} fresh tickets (events 1-10 of {tickets}): {fresh:6.2f} ms")
        print(f"  {name:<10} one ticket, events {long:,}-{long + 200:,}:        {far:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
