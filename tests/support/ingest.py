"""Shared by the import, export and batch tests: a config with escalation rules, sample lines
with every kind of case, the same lines sent one by one through the services, and a
snapshot of what a database holds (ids and write times left out) to compare two runs."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import sqlalchemy as sa

from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from sla_engine.errors import SlaEngineError
from sla_engine.ingest.jsonl import EventLine, GrantLine, Line, LineError, TicketLine, parse_line
from sla_engine.ingest.line_results import error_text
from sla_engine.storage.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 11, 20, 17, 30, tzinfo=UTC)
"""The import's `now` in comparisons: some sample tickets are still running then."""

CONFIG = """
[database]
url = "{url}"

[[destinations]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[policies.standard.first_response]
escalate = [{{at = "75%", to = "oncall"}}, {{at = "100%", to = "oncall"}}]
repeat_after_breach = {{every = "1h", to = "oncall"}}

[policies.standard.next_response]
calendar = "smartertools"
breach = "8h"
escalate = [{{at = "100%", to = "oncall"}}]

[policies.standard.resolution]
calendar = "smartertools"
breach = "40h"

[policies.emergency.first_response]
escalate = [{{at = "-15m", to = "oncall"}}]

[products]
SmarterMail = 16
"""


def write_config(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sla.toml"
    path.write_text(CONFIG.format(url=url))
    return path


@contextmanager
def services_at(config: Path, now: datetime = NOW, *, history: bool = True) -> Iterator[Services]:
    svc = build_services(load_config(config, env={}), clock=lambda: now, history=history)
    try:
        yield svc
    finally:
        svc.close()


@contextmanager
def serving(config: Path, now: datetime = NOW) -> Iterator[tuple[httpx.Client, Services]]:
    """A real HTTP server over live services (timers planned as usual) on `config`."""
    from sla_engine.api import create_app
    from tests.support.server import serve_app

    with services_at(config, now, history=False) as svc:
        app = create_app(svc, api_token=None)
        with serve_app(app) as base, httpx.Client(base_url=base, timeout=120) as client:
            yield client, svc


def second_database(db_url: str, tmp_path: Path, request: Any) -> str:
    """Another empty database of the same kind as `db_url` (dropped after the test)."""
    if db_url.startswith("sqlite"):
        (tmp_path / "second").mkdir(exist_ok=True)
        return f"sqlite:///{tmp_path / 'second' / 'second.db'}"
    from tests.conftest import pg_database

    context = pg_database()
    url = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    return url


def generator() -> ModuleType:
    """`examples/generate_sample.py` as a module."""
    path = ROOT / "examples" / "generate_sample.py"
    spec = importlib.util.spec_from_file_location("generate_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_sample", module)
    spec.loader.exec_module(module)
    return module


def generated_lines(tickets: int, *, seed: int = 7, start: str = "2025-09-01") -> list[str]:
    out = io.StringIO()
    gen = generator()
    args = gen.main.__globals__["argparse"].Namespace(
        tickets=tickets, events=8, accounts=max(1, tickets // 4), start=start, seed=seed, bad=0
    )
    gen.Generator(args).write(out)
    return out.getvalue().splitlines()


def edge_lines() -> list[str]:
    """Lines for every case a file can hold besides the plain ones."""
    t0 = "2025-11-18T09:00:00-07:00"

    def event(ticket: str, event_id: str, kind: str, at: str, **data: Any) -> str:
        body = {"kind": "event", "ticket_id": ticket, "event_id": event_id, "type": kind}
        return json.dumps({**body, "occurred_at": at, **data})

    lines = [
        # an account with one credit, spent by the first ticket: the second is refused (402)
        '{"kind":"grant","account":"edge-acct","type":"renewal","occurred_at":"2025-06-01T00:00:00Z"}',
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-1",
                "policy": "standard",
                "created_at": t0,
                "account": "edge-acct",
                "product": "SmarterMail",
                "version": "12",
            }
        ),
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-2",
                "policy": "standard",
                "created_at": t0,
                "account": "edge-acct",
            }
        ),
        event("E-2", "e1", "agent_reply", "2025-11-18T10:00:00-07:00"),  # 404: refused ticket
        # events out of order, a duplicate, one before creation, a policy change, pending
        event("E-1", "e3", "customer_reply", "2025-11-18T13:00:00-07:00"),
        event("E-1", "e1", "agent_reply", "2025-11-18T09:30:00-07:00"),
        event("E-1", "e1", "agent_reply", "2025-11-18T09:30:00-07:00"),
        event("E-1", "e0", "customer_reply", "2025-11-17T09:30:00-07:00"),
        event("E-1", "e4", "pending", "2025-11-18T13:30:00-07:00"),
        event("E-1", "e5", "customer_reply", "2025-11-19T08:30:00-07:00"),
        # the same ticket again (duplicate) and a different one under its id (409)
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-1",
                "policy": "standard",
                "created_at": t0,
                "account": "edge-acct",
                "product": "SmarterMail",
                "version": "12",
            }
        ),
        json.dumps({"kind": "ticket", "id": "E-1", "policy": "emergency", "created_at": t0}),
        # a ticket without account, still running at NOW, changed to emergency
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-3",
                "policy": "standard",
                "created_at": "2025-11-20T08:10:00-07:00",
            }
        ),
        event("E-3", "p1", "policy_changed", "2025-11-20T09:00:00-07:00", policy="emergency"),
        event("E-3", "p2", "policy_changed", "2025-11-20T09:05:00-07:00", policy="nope"),  # 422
        # a split (opens E-4 through the credit hook), a verified bug credited back
        '{"kind":"grant","account":"edge-acct","type":"ticket_purchase","quantity":3,'
        '"price_per_ticket":"19.50","package":"3-pack","occurred_at":"2025-11-01T00:00:00Z"}',
        event("E-1", "s1", "split", "2025-11-19T09:00:00-07:00", new_ticket_id="E-4"),
        event("E-4", "a1", "agent_reply", "2025-11-19T10:00:00-07:00"),
        event("E-1", "b1", "verified_bug", "2025-11-19T11:00:00-07:00", remedy="credit"),
        # a split without account, into an id that sorts before its parent's
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-9",
                "policy": "standard",
                "created_at": "2025-11-19T08:00:00-07:00",
            }
        ),
        event("E-9", "s9", "split", "2025-11-19T09:00:00-07:00", new_ticket_id="E-10"),
        event("E-10", "r10", "agent_reply", "2025-11-19T09:30:00-07:00"),
        # a ticket with its own calendar, moved to another team's; an unknown calendar (422)
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-11",
                "policy": "standard",
                "created_at": "2025-11-19T08:00:00+01:00",
                "calendar": "example-berlin",
            }
        ),
        event(
            "E-11", "m1", "calendar_changed", "2025-11-19T12:00:00+01:00", calendar="example-sydney"
        ),
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-12",
                "policy": "standard",
                "created_at": "2025-11-19T08:00:00Z",
                "calendar": "atlantis",
            }
        ),
        # grants and subscriptions: a repeated line in one file is booked twice
        '{"kind":"grant","account":"twice","type":"license_purchase","occurred_at":"2025-03-03T00:00:00Z"}',
        '{"kind":"grant","account":"twice","type":"license_purchase","occurred_at":"2025-03-03T00:00:00Z"}',
        '{"kind":"subscription","account":"hosted-1","start":"2025-01-01T00:00:00Z"}',
        '{"kind":"subscription","account":"hosted-1","type":"hosted","start":"2025-01-01T00:00:00Z","end":"2025-12-01T00:00:00Z"}',
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-5",
                "policy": "standard",
                "created_at": "2025-11-20T06:00:00-07:00",
                "account": "hosted-1",
            }
        ),
        # a long ticket: saved-clock checkpoints (one every 64 events)
        json.dumps(
            {
                "kind": "ticket",
                "id": "E-7",
                "policy": "standard",
                "created_at": "2025-10-01T08:00:00-07:00",
            }
        ),
        *(
            event(
                "E-7",
                f"c{n}",
                ("customer_reply", "agent_reply")[n % 2],
                f"2025-10-{1 + n // 24:02d}T{8 + n % 8:02d}:{10 + n % 40:02d}:00-07:00",
            )
            for n in range(150)
        ),
        # bad lines
        '{"kind":"ticket","id":"E-6","policy":"standard","created_at":"2025-11-20T06:00:00"}',
        '{"kind":"event","ticket_id":"E-3","event_id":"x","type":"bogus","occurred_at":"2025-11-20T09:00:00Z"}',
        '{"kind":"grant","account":"x","type":"renewal","quantity":5,"occurred_at":"2025-11-20T09:00:00Z"}',
        '{"kind":"parcel"}',
        "[1, 2]",
        '{"kind":"event", "ticket_id": ',
    ]
    return lines


def sample_lines(tickets: int = 60) -> list[str]:
    return generated_lines(tickets) + edge_lines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def import_file(config: Path, source: Path, *, chunk: int = 5_000, now: datetime = NOW) -> Any:
    """`Importer.run` with the test clock (the command uses the wall clock); the outcome."""
    from sla_engine.ingest.importer import Importer

    with services_at(config, now) as svc:
        importer = Importer(svc.tickets, svc.sessionmaker, clock=svc.clock, chunk_lines=chunk)
        return importer.run(source)


def single_call(svc: Services, line: Line) -> None:
    """A parsed line as the single service call its HTTP request makes (one transaction)."""
    if isinstance(line, TicketLine):
        svc.tickets.create_ticket(line.request)
    elif isinstance(line, EventLine):
        svc.tickets.add_event(line.ticket_id, line.request)
    elif isinstance(line, GrantLine):
        svc.credits.grant(
            line.account,
            line.kind,
            line.occurred_at,
            quantity=line.quantity,
            price_per_ticket=line.price_per_ticket,
            package=line.package,
        )
    else:
        svc.credits.subscribe(line.account, line.kind, line.start, line.end)


def import_one_by_one(svc: Services, lines: list[str]) -> list[tuple[int, str]]:
    """Each line as its single call (one transaction each); the rejected (line, error)."""
    rejected = []
    for number, text in enumerate(lines, start=1):
        try:
            single_call(svc, parse_line(text))
        except LineError as exc:
            rejected.append((number, exc.message))
        except SlaEngineError as exc:
            rejected.append((number, error_text(exc)))
    return rejected


# --- what a database holds -------------------------------------------------------------------

_SKIP = {"received_at", "updated_at", "created_at_row", "recorded_at", "fired_at"}


def snapshot(url: str) -> dict[str, Any]:
    """Tickets, events, metric rows, checkpoints, timers, outbox rows and ledger entries,
    without surrogate ids (seq, entry and timer ids) and write times."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _snapshot(conn)
    finally:
        engine.dispose()


def _rows(conn: sa.Connection, query: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.text(query))]


def _snapshot(conn: sa.Connection) -> dict[str, Any]:
    tickets = {r["id"]: _clean(r, "received_at") for r in _rows(conn, "select * from tickets")}
    events: dict[str, list[tuple[Any, ...]]] = {}
    seq_to_event: dict[int, str] = {}
    for r in _rows(conn, "select * from ticket_events order by seq"):
        events.setdefault(r["ticket_id"], []).append(
            (r["event_id"], r["type"], _instant(r["occurred_at"]), _json(r["data"]))
        )
        seq_to_event[r["seq"]] = r["event_id"]
    metrics = {
        (r["ticket_id"], r["metric"]): _clean(r, "updated_at")
        for r in _rows(conn, "select * from ticket_metrics")
    }
    checkpoints = sorted(
        (r["ticket_id"], str(_instant(r["occurred_at"])), seq_to_event[r["seq"]], _json(r["state"]))
        for r in _rows(conn, "select * from ticket_checkpoints")
    )
    timers = sorted(
        tuple(sorted(_clean(r, "id", "created_at", "updated_at", "fired_at").items()))
        for r in _rows(conn, "select * from escalation_timers")
    )
    deliveries = sorted(
        tuple(sorted(_clean(r, "created_at", "updated_at", "timer_id").items()))
        for r in _rows(conn, "select * from escalation_deliveries")
    )
    ledger: dict[str, list[dict[str, Any]]] = {}
    position: dict[int, int] = {}
    for r in _rows(conn, "select * from credit_ledger order by id"):
        entries = ledger.setdefault(r["account"], [])
        position[r["id"]] = len(entries)
        entry = _clean(r, "id", "recorded_at")
        entry["lot_id"] = None if r["lot_id"] is None else position[r["lot_id"]]
        entries.append(entry)
    return {
        "tickets": tickets,
        "events": events,
        "metrics": metrics,
        "checkpoints": checkpoints,
        "timers": timers,
        "deliveries": deliveries,
        "ledger": ledger,
    }


def _clean(row: dict[str, Any], *skip: str) -> dict[str, Any]:
    return {
        k: _json(_instant(v)) if k in ("clock_state", "state", "data") else _instant(v)
        for k, v in row.items()
        if k not in skip
    }


def _instant(value: Any) -> Any:
    """Timestamps as UTC datetimes whatever the driver returns (SQLite: text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            return value
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Readable differences between two snapshots (empty when equal)."""
    found = []
    for part in a:
        if a[part] == b[part]:
            continue
        left, right = a[part], b[part]
        if isinstance(left, dict):
            found.extend(
                f"{part}[{key}]: {left.get(key)!r} != {right.get(key)!r}"
                for key in sorted(set(left) | set(right), key=str)
                if left.get(key) != right.get(key)
            )
        else:
            extra = [x for x in left if x not in right][:3]
            missing = [x for x in right if x not in left][:3]
            found.append(f"{part}: only in first {extra!r}; only in second {missing!r}")
    return found[:20]


Clock = Callable[[], datetime]


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)
