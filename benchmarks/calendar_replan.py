"""Re-planning after a calendar change: open tickets on the changed calendar, on SQLite and
PostgreSQL.

The fixture: N open tickets on `smartertools` (standard policy with two escalation
thresholds, so every ticket has metric rows and pending timers). A few hundred template
tickets are created through the ticket service; the rest are copies of their rows made with
one `INSERT ... SELECT` per table (the rows of a copy are what the service would write for
it: same policy, same created_at). Then the team's hours are cut from 08:00-17:00 to
08:00-13:00, effective now, and measured:

- re-plan: tickets/s of the re-plan job (every ticket replayed with the new version, its
  metric rows and pending timers rewritten), one process with the garbage collector tuned
  as in `serve` and `worker`, batches of 200 per transaction (the job's default); a sample
  of tickets is then checked against a fresh replay;
- lag: with `sla-engine serve --workers 2` and one `sla-engine worker` running, a version is
  PUT over HTTP; the time until every answer of both server processes shows the new hours,
  and until the stored rows of all N tickets follow (a large job is split into slices, which
  the three processes work at once), as tickets/s, with the CPU the processes and the
  database backends spent meanwhile.

Default N is 5,000 (`make bench`); `--full` is 100,000.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.support
from scratch_db import scratch_database as database

from tests.support.calendars import ESCALATING_CONFIG as CONFIG
from tests.support.calendars import Clock
from tests.support.calendars import support_hours as hours

CLI = str(Path(sys.executable).with_name("sla-engine"))
PHOENIX = ZoneInfo("America/Phoenix")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=PHOENIX)  # a Wednesday, noon in Phoenix
TEMPLATES = 240
TARGET = 5_000  # tickets/s re-planned, on each database


# -- the fixture ---------------------------------------------------------------------------


def create_templates(services: Any) -> None:
    from sla_engine.tickets import TicketCreate

    for index in range(TEMPLATES):
        created = NOW - timedelta(minutes=index)  # 08:00..12:00 Phoenix, every minute
        services.tickets.create_ticket(
            TicketCreate(id=f"t{index:04d}", policy="standard", created_at=created)
        )


def clone_tickets(engine: sa.engine.Engine, copies: int) -> None:
    """`copies` more copies of every template ticket, one statement per table."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_copies (k INTEGER PRIMARY KEY)"))
        conn.execute(
            sa.text("INSERT INTO bench_copies (k) VALUES (:k)"),
            [{"k": k} for k in range(1, copies + 1)],
        )
        for table in _ticket_tables(meta):
            key = "id" if table.name == "tickets" else "ticket_id"
            columns = _copied_columns(table)
            chosen = ", ".join(f"t.{c} || '-' || n.k" if c == key else f"t.{c}" for c in columns)
            conn.execute(
                sa.text(
                    f"INSERT INTO {table.name} ({', '.join(columns)}) "
                    f"SELECT {chosen} FROM {table.name} t CROSS JOIN bench_copies n "
                    f"WHERE t.{key} LIKE 't%' AND t.{key} NOT LIKE '%-%'"
                )
            )
        conn.execute(sa.text("DROP TABLE bench_copies"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))


def _copied_columns(table: sa.Table) -> list[str]:
    """Every column but a generated integer key (a copy gets its own)."""
    keys = list(table.primary_key.columns)
    generated = len(keys) == 1 and isinstance(keys[0].type, sa.Integer)
    return [c.name for c in table.columns if not (generated and c.primary_key)]


def _ticket_tables(meta: sa.MetaData) -> list[sa.Table]:
    tables = [meta.tables["tickets"]]
    for table in meta.sorted_tables:
        if table.name != "tickets" and "ticket_id" in table.columns:
            if table.name.startswith(("escalation_deliveries", "credit")):
                continue
            tables.append(table)
    return tables


def count_open(engine: sa.engine.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(DISTINCT ticket_id) FROM ticket_metrics WHERE calendar = :c"),
                {"c": "smartertools"},
            ).scalar_one()
        )


# -- the measurements ----------------------------------------------------------------------


def measure_replan(url: str, tickets: int) -> dict[str, Any]:
    from sla_engine.composition import build_services, tune_gc_for_service
    from sla_engine.config import load_config

    config_file = Path(tempfile.mkdtemp()) / "config.toml"
    config_file.write_text(CONFIG)
    clock = Clock(NOW)
    services = build_services(load_config(config_file, env={}, database_url=url), clock=clock)
    store = services.calendar_store
    assert store is not None and store.replanner is not None
    try:
        began = time.perf_counter()
        create_templates(services)
        clone_tickets(services.engine, tickets // TEMPLATES - 1)
        built_s = time.perf_counter() - began
        total = count_open(services.engine)
        # as in `serve` and `worker`, whose processes run re-plans: the start-up heap frozen,
        # the collector's thresholds raised (else its passes over that heap cost about as
        # much CPU as the re-plan itself)
        tune_gc_for_service()
        clock.now = NOW + timedelta(minutes=1)
        store.put("smartertools", hours("08:00-13:00"))
        backends = BackendCpu(services.engine)
        began, cpu_began = time.perf_counter(), time.process_time()
        done = store.replanner.run_pending()
        replan_s = time.perf_counter() - began
        cpu_s = time.process_time() - cpu_began + backends.seconds()
        print(f"  re-planned {done} in {replan_s:.2f} s", flush=True)
        wrong = check_sample(services, clock.now)
        replay_s = replay_only(services, clock.now)
    finally:
        services.close()
    return {
        "tickets": total,
        "fixture_s": built_s,
        "replanned": done,
        "replan_s": replan_s,
        "rate": done / replan_s if replan_s else float("inf"),
        "cpu_rate": done / cpu_s if cpu_s else float("inf"),
        "ceiling": total / replay_s if replay_s else float("inf"),
        "sample_wrong": wrong,
    }


class BackendCpu:
    """CPU seconds spent by the PostgreSQL backends of `engine`'s connections from now on (read
    from /proc: the database runs on this machine); 0 on SQLite (no server process)."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.pids: set[int] = set()
        if engine.dialect.name == "postgresql" and Path("/proc").is_dir():
            sa.event.listen(engine, "checkout", self._note)
            engine.dispose()  # the fixture's connections close: each one used from now is new

    def _note(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if "pid" not in record.info:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                record.info["pid"] = int(cur.fetchone()[0])
            self.pids.add(record.info["pid"])

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")


def replay_only(services: Any, now: datetime) -> float:
    """Seconds to replay every open ticket with the new version in memory, nothing written:
    the ceiling a re-plan approaches as its writes cost less."""
    from sla_engine.tickets import store

    clocks = services.tickets.clocks
    with services.sessionmaker.begin() as session:
        ids = list(
            session.scalars(
                sa.text(
                    "SELECT DISTINCT ticket_id FROM ticket_metrics WHERE calendar = :c "
                    "ORDER BY ticket_id"
                ),
                {"c": "smartertools"},
            )
        )
        loaded, logs = [], {}
        for start in range(0, len(ids), 5_000):  # a bound parameter per id: 65,535 at most
            part = ids[start : start + 5_000]
            loaded += store.find_tickets(session, part)
            logs.update(store.event_rows_of(session, part))
    began = time.perf_counter()
    for item in loaded:
        clock, _ = clocks.rebuild_from_rows(item.ticket, logs[item.ticket.id])
        clocks.state_from_rows(item.ticket, clock, logs[item.ticket.id], now)
    return time.perf_counter() - began


def check_sample(services: Any, now: datetime) -> int:
    """Tickets of a sample whose stored breach_at differs from a fresh replay."""
    from sla_engine.storage.models import TicketMetric

    m = TicketMetric
    with services.sessionmaker.begin() as session:
        rows = session.execute(
            sa.select(m.ticket_id, m.breach_at)
            .where(m.metric == "first_response")
            .order_by(m.ticket_id)
            .limit(200)
        ).all()
    wrong = 0
    for ticket_id, stored in rows:
        fresh = services.tickets.sla(ticket_id, now).metrics["first_response"].breach_at
        wrong += stored != fresh
    return wrong


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_lag(url: str, tickets: int) -> dict[str, Any]:
    """Real processes: `serve --workers 2` and a `worker`; PUT a version; time the answers."""
    config_file = Path(tempfile.mkdtemp()) / "config.toml"
    config_file.write_text(CONFIG)
    port = free_port()
    env = {**os.environ}
    env.pop("SLA_ENGINE_CALENDARS", None)
    # the processes run this checkout's code, not the one the environment installed
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    common = ["--config", str(config_file), "--database-url", url]
    procs = [
        subprocess.Popen(
            [CLI, "serve", "--port", str(port), "--workers", "2", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [CLI, "worker", *common], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    monday = "2027-01-04"
    cpu = ProcessCpu(url, [proc.pid for proc in procs])
    window = {"from": f"{monday}T00:00:00-07:00", "to": f"{monday}T23:59:00-07:00"}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            _wait_ready(client)
            before = client.get("/v1/calendars/smartertools/intervals", params=window).json()
            answer = client.put(
                "/v1/calendars/smartertools",
                json={
                    "definition": hours("09:00-10:00"),
                    "effective_from": f"{monday}T00:00:00-07:00",
                },
            )
            put_done = time.perf_counter()
            cpu.start()
            assert answer.status_code == 201, answer.text
            new_seen = None
            streak = 0
            while time.perf_counter() - put_done < 10:
                # a fresh connection each time, so both server processes answer
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    got = fresh.get("/v1/calendars/smartertools/intervals", params=window).json()
                if got["intervals"] and got["intervals"][0]["start"].startswith(f"{monday}T09:00"):
                    streak += 1
                    if new_seen is None:
                        new_seen = time.perf_counter()
                    if streak >= 40:
                        break
                else:
                    streak, new_seen = 0, None
            every_process_s = None if new_seen is None else new_seen - put_done
            rows_s = _wait_replanned(url, put_done)
            cpu_s = cpu.seconds()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "every_process_s": every_process_s,
        "rows_follow_s": rows_s,
        "cpu_s": cpu_s,
        "before": before,
    }


class ProcessCpu:
    """CPU seconds spent from `start()` on by the processes `pids`, their children (uvicorn's
    worker processes) and, on PostgreSQL, the backends of the database (read from /proc)."""

    def __init__(self, url: str, pids: list[int]) -> None:
        self.url, self.roots, self.began = url, pids, 0.0

    def _pids(self) -> set[int]:
        found = set(self.roots)
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int(_stat(int(entry.name))[1])
                except (OSError, IndexError, ValueError):
                    continue
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in found} - found
            found |= more
            grew = bool(more)
        if self.url.startswith("postgresql"):
            name = sa.make_url(self.url).database
            engine = sa.create_engine(self.url)
            try:
                with engine.connect() as conn:
                    found |= set(
                        conn.execute(
                            sa.text(
                                "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                                "AND pid <> pg_backend_pid()"
                            ),
                            {"d": name},
                        ).scalars()
                    )
            finally:
                engine.dispose()
        return found

    def _total(self) -> float:
        ticks = 0
        for pid in self._pids():
            try:
                fields = _stat(pid)
            except (OSError, IndexError):
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.began = self._total()

    def seconds(self) -> float:
        return self._total() - self.began


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...] (field 14 is at 11)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def _wait_replanned(url: str, since: float) -> float | None:
    from sla_engine.storage.db import make_engine

    engine = make_engine(url)
    try:
        while time.perf_counter() - since < 600:
            with engine.connect() as conn:
                left = conn.execute(
                    sa.text("SELECT count(*) FROM calendar_replans WHERE finished_at IS NULL")
                ).scalar_one()
            if not left:
                return time.perf_counter() - since
            time.sleep(0.2)
        return None
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=5_000, help="open tickets (default 5,000)")
    parser.add_argument("--full", action="store_true", help="100,000 open tickets")
    parser.add_argument("--quick", action="store_true", help="1,000 tickets (smoke runs)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--no-lag", action="store_true", help="skip the multi-process lag run")
    args = parser.parse_args(argv)
    tickets = 100_000 if args.full else 1_000 if args.quick else args.tickets
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    print(f"calendar re-plan: {tickets:,} open tickets on the changed calendar")
    failed = False
    for kind in kinds:
        try:
            with database(kind) as url:
                result = measure_replan(url, tickets)
                lag = None if args.no_lag else measure_lag(url, tickets)
        except sa.exc.OperationalError as exc:
            print(f"{kind:<10} skipped: database unreachable ({exc.orig})")
            continue
        print(
            f"{kind:<10} re-plan {result['replanned']:>7,} tickets in {result['replan_s']:6.2f} s"
            f" = {result['rate']:8,.0f} tickets/s  (fixture {result['fixture_s']:.1f} s, "
            f"sample wrong: {result['sample_wrong']})"
        )
        print(
            f"{'':<10} per CPU second (this process + database backend): "
            f"{result['cpu_rate']:,.0f} tickets/s; ceiling (replay alone, nothing written): "
            f"{result['ceiling']:,.0f} tickets/s; target {TARGET:,} tickets/s"
        )
        if lag is not None:
            seen = lag["every_process_s"]
            rows = lag["rows_follow_s"]
            print(
                f"{kind:<10} lag: every process answers with the new hours after "
                f"{'never' if seen is None else f'{seen:.2f} s'}; stored rows of all tickets "
                f"follow after {'never' if rows is None else f'{rows:.1f} s'}"
            )
            if rows and lag["cpu_s"]:
                print(
                    f"{'':<10} lag: {result['tickets'] / rows:,.0f} tickets/s over 3 processes; "
                    f"CPU (processes + database backends) {lag['cpu_s']:.1f} s = "
                    f"{result['tickets'] / lag['cpu_s']:,.0f} tickets per CPU second"
                )
            failed |= seen is None or seen > 2.0 or rows is None or rows > 60
        failed |= result["sample_wrong"] > 0 or result["replanned"] != result["tickets"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
