"""`sla-engine import` throughput: a generated year of tickets into SQLite and PostgreSQL.

The file comes from `examples/generate_sample.py` (tickets with about 10 events each, accounts
with grants, a few emergency tickets and credit events). Each import is the real command in a
subprocess with the default config (as `serve` runs without `--config`); its wall time, CPU
time and peak RSS are measured from outside. The reference, in the same run and on the same
database kind, is a small file of the same generator (300 tickets) sent line by line through
the ticket and credit services (one transaction each, as the single HTTP calls make them,
without HTTP): its events/s.

    python benchmarks/import_throughput.py            # 20,000 tickets, ~200,000 events
    python benchmarks/import_throughput.py --full     # 100,000 tickets, ~1,000,000 events
    python benchmarks/import_throughput.py --quick    # 500 tickets (smoke test)
    python benchmarks/import_throughput.py --time-sorted   # lines sorted by their instant

`--time-sorted` imports the same lines sorted by time (a ticket's events spread over many
chunks, as a log of the day's events would have them) instead of each ticket followed by its
events.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.support
from scratch_db import optional_pg_database as postgres_database

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "sla-engine")
AIMS = {"sqlite": 20_000.0, "postgresql": 10_000.0}
RSS_LIMIT_MB = 500


@dataclass(frozen=True)
class Run:
    events: int
    lines: int
    import_s: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    db_cpu_s: float
    summary: str


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_sample", ROOT / "examples" / "generate_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def make_file(folder: Path, tickets: int, *, time_sorted: bool = False) -> Path:
    path = folder / f"tickets-{tickets}.jsonl"
    code = generator().main(["--tickets", str(tickets), "--events", "10", "--out", str(path)])
    assert code == 0
    if time_sorted:
        lines = path.read_text().splitlines()
        lines.sort(key=_instant_of)  # stable: a ticket stays before its events at one instant
        path.write_text("\n".join(lines) + "\n")
    return path


def _instant_of(text: str) -> datetime:
    line = json.loads(text)
    return datetime.fromisoformat(
        line.get("occurred_at") or line.get("created_at") or line["start"]
    )


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving database `url` while the import runs,
    read from /proc (the server runs on this machine) every 0.1 s until `stop()`: a backend
    ends with its connection, so its last reading is at most that much short. 0 on SQLite."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[int, float] = {}
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        if url.startswith("postgresql") and Path("/proc").is_dir():
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()

    def _poll(self) -> None:
        import sqlalchemy as sa

        name = sa.make_url(self.url).database
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")  # a fresh view each time
        query = sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
        )
        tick = os.sysconf("SC_CLK_TCK")
        try:
            with engine.connect() as conn:
                while not self.done.wait(0.1):
                    for pid in conn.execute(query, {"d": name}).scalars():
                        try:
                            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
                        except OSError:
                            continue
                        parts = fields.split()
                        self.seen[pid] = (int(parts[11]) + int(parts[12])) / tick
        finally:
            engine.dispose()

    def stop(self) -> float:
        self.done.set()
        if self.thread is not None:
            self.thread.join()
        return sum(self.seen.values())


def run_import(source: Path, url: str) -> Run:
    """The command in a subprocess; its wall time, CPU time and peak RSS (from wait4), and
    the CPU time of its PostgreSQL backends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    backends = BackendCpu(url)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [CLI, "import", str(source), "--database-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    db_cpu = backends.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"import failed ({proc.returncode}): {err[-2000:]}")
    summary = out.strip().splitlines()[-1]
    events = int(summary.split(" events,")[0].rsplit(" ", 1)[1].replace(",", ""))
    lines = int(summary.split(" lines in ")[0].rsplit(" ", 1)[1].replace(",", ""))
    seconds = float(summary.split(" lines in ")[1].split(" s ")[0])
    return Run(
        events=events,
        lines=lines,
        import_s=seconds,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        db_cpu_s=db_cpu,
        summary=summary,
    )


def single_calls(source: Path, url: str) -> float:
    """Events/s of the file's lines sent one by one through the services."""
    from sla_engine.composition import build_services
    from sla_engine.config import load_config
    from sla_engine.errors import SlaEngineError
    from sla_engine.ingest.jsonl import EventLine, parse_line
    from tests.support.ingest import single_call

    services = build_services(load_config(None, env={}, database_url=url), history=True)
    events = 0
    seconds = 0.0
    try:
        with source.open() as handle:
            for text in handle:
                line = parse_line(text)
                began = time.perf_counter()
                try:
                    single_call(services, line)
                except SlaEngineError:
                    continue
                if isinstance(line, EventLine):
                    events += 1
                    seconds += time.perf_counter() - began
    finally:
        services.close()
    return events / seconds if seconds else 0.0


def measure(label: str, url: str, source: Path, reference_url: str, reference: Path) -> None:
    single = single_calls(reference, reference_url)
    run = run_import(source, url)
    rate = run.events / run.import_s
    command_rate = run.events / run.wall_s
    cpu_rate = run.events / run.cpu_s if run.cpu_s else 0.0
    with_db = run.events / (run.cpu_s + run.db_cpu_s) if run.cpu_s else 0.0
    aim = AIMS[label]
    print(f"  {label}: {run.summary}", flush=True)
    print(
        f"  {label:<11} {run.events:>10,} {rate:>10,.0f} {command_rate:>10,.0f} {cpu_rate:>10,.0f}"
        f" {with_db:>10,.0f} {single:>9,.0f} {rate / single if single else 0:>7.1f}x {aim:>8,.0f}"
        f" {rate / aim:>6.2f}x {run.wall_s:>7.1f} {run.peak_rss_mb:>7.0f}"
        f" {'ok' if run.peak_rss_mb < RSS_LIMIT_MB else 'OVER'}",
        flush=True,
    )
    ROWS.append((label, run, rate, cpu_rate, single, aim))


ROWS: list[tuple[str, Run, float, float, float, float]] = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="500 tickets (smoke test)")
    size.add_argument("--full", action="store_true", help="100,000 tickets, ~1,000,000 events")
    parser.add_argument("--tickets", type=int, help="tickets in the generated file")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--time-sorted", action="store_true", help="the lines sorted by time, not by ticket"
    )
    args = parser.parse_args(argv)
    tickets = args.tickets or (500 if args.quick else 100_000 if args.full else 20_000)
    load = os.getloadavg()[0]
    order = "sorted by time" if args.time_sorted else "each ticket followed by its events"
    print(
        f"import throughput: {tickets:,} tickets, ~10 events each, {order}; "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start (other work on the machine "
        "lowers wall rates)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        source = make_file(folder, tickets, time_sorted=args.time_sorted)
        reference = make_file(folder, 100 if args.quick else 300)
        print(
            f"generated {source.name} ({source.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - began:.1f} s"
        )
        print(
            f"  {'database':<11} {'events':>10} {'events/s':>10} {'w/ start':>10} "
            f"{'ev/CPU-s':>10} {'w/ db CPU':>10} {'single/s':>9} {'ratio':>8} {'aim':>8} "
            f"{'of aim':>7} {'wall s':>7} {'RSS MB':>7}"
        )
        measure(
            "sqlite",
            f"sqlite:///{folder / 'import.db'}",
            source,
            f"sqlite:///{folder / 'single.db'}",
            reference,
        )
        if not args.sqlite_only:
            with postgres_database() as url, postgres_database() as reference_url:
                if url is not None and reference_url is not None:
                    measure("postgresql", url, source, reference_url, reference)
    print()
    print("events/s: the import's events over the time its summary line gives (reading and")
    print("writing the file's lines); w/ start: over the command's whole wall time (start-up and")
    print("migrations too); ev/CPU-s: over the command's CPU time (its rate on a quiet machine);")
    print("w/ db CPU: over the command's and its PostgreSQL backends' CPU time (from /proc);")
    print("single/s: the events of a small file of the same kind sent as single calls, in this")
    print("run; ratio: events/s over single/s; aim: the issue's target (of aim: events/s over it);")
    print(f"RSS: the import process's peak resident memory (must stay < {RSS_LIMIT_MB} MB).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
