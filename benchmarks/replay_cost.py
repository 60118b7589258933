"""The CPU cost of a ticket's clock replay, beside a ceiling (a plain loop over the same events).

Pure Python, no database: the three ways the service replays a ticket's clock, on the
standard policy, `smartertools` with two versions (the hours cut from 08:00-17:00 to
08:00-13:00 on 2026-12-02, as after a calendar change), CPU time of this process:

- whole: a ticket's log of 10 events replayed whole and evaluated now (`rebuild_from_rows`
  + `state_from_rows`, what a re-plan and the bulk import do per ticket);
- one event: the saved clock resumed from its JSON, one event applied, evaluated now and
  saved again as JSON text (what an in-order event over HTTP does beside its SQL);
- re-plan: 200 open tickets created a minute apart (no event yet, as in
  `calendar_replan.py`), each replayed whole and evaluated now (tickets/s).

The ceiling is a plain loop over the same events (each row turned into a clock `Event`):
what is left when the replay itself costs nothing. Works on any checkout that has
`TicketClocks` (run it with PYTHONPATH=<checkout> to measure another commit).

    python benchmarks/replay_cost.py            # best of 5 rounds
    python benchmarks/replay_cost.py --rounds 2 # quicker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sla_engine.config import load_config
from sla_engine.core.calendar import Calendar, load_calendar, versioned_calendar
from sla_engine.core.calendar_spec import Window
from sla_engine.tickets.store import StoredEvent, clock_event
from sla_engine.tickets.ticket_clock import TicketClocks

PHOENIX = ZoneInfo("America/Phoenix")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=PHOENIX)  # a Wednesday, noon in Phoenix
CHANGE = NOW - timedelta(hours=1)
LOG = (  # (minutes after creation, type): a typical standard-policy ticket
    (0, "created"),
    (5, "customer_reply"),
    (20, "agent_reply"),
    (25, "pending"),
    (50, "customer_reply"),
    (70, "agent_reply"),
    (75, "customer_reply"),
    (90, "agent_reply"),
    (100, "solved"),
    (110, "closed"),
)


@dataclass
class FakeTicket:
    id: str
    policy: str
    created_at: datetime
    initial_calendar: str | None = None
    clock_state: dict[str, Any] | None = None


class TwoVersions:
    """A calendar source: `smartertools` with a second version from CHANGE (revision 2)."""

    def __init__(self) -> None:
        base = load_calendar("smartertools")
        morning = (Window(timedelta(hours=8), timedelta(hours=13), "08:00-13:00"),)
        cut = replace(base.spec, hours=(morning,) * 5 + ((), ()))
        self.cal = versioned_calendar("smartertools", [(None, base), (CHANGE, cut)])
        self.others = {"24x7": load_calendar("24x7")}

    def calendar(self, name: str, known_at: datetime | None = None) -> Calendar:
        return self.cal if name == "smartertools" else self.others[name]

    def revision(self, name: str) -> int:
        return 2 if name == "smartertools" else 0


def rows_of(created: datetime) -> list[StoredEvent]:
    return [
        StoredEvent(i + 1, f"e{i}", kind, created + timedelta(minutes=m), {}, created)
        for i, (m, kind) in enumerate(LOG)
    ]


def cpu(call: Callable[[], object], repeat: int) -> float:
    """CPU microseconds per call (best of the rounds is taken by the caller)."""
    began = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - began) / repeat * 1e6


def measures(clocks: TicketClocks) -> dict[str, Callable[[], object]]:
    created = NOW - timedelta(hours=3)
    ticket = FakeTicket("t", "standard", created)
    rows = rows_of(created)

    def whole() -> object:
        clock, _ = clocks.rebuild_from_rows(ticket, rows)
        return clocks.state_from_rows(ticket, clock, rows, NOW)

    # the saved clock after all but the last event, as the database hands it back
    first = clocks.begin(ticket)
    for row in rows[:-1]:
        first.apply(clock_event(row))
    saved_text = json.dumps(clocks.to_json(first))
    last = rows[-1]

    def one_event() -> object:
        ticket.clock_state = json.loads(saved_text)
        clock = clocks.resume(ticket)
        assert clock is not None
        clock.apply(clock_event(last))
        clock.replay.state(ticket.id, NOW)
        return json.dumps(clocks.to_json(clock))

    # as in `calendar_replan.py`: open tickets created a minute apart, no event yet
    many = [FakeTicket(f"t{i}", "standard", NOW - timedelta(minutes=i)) for i in range(200)]
    logs: dict[str, list[StoredEvent]] = {t.id: [] for t in many}

    def replan() -> object:
        for t in many:
            clock, _ = clocks.rebuild_from_rows(t, logs[t.id])
            clocks.state_from_rows(t, clock, logs[t.id], NOW)
        return None

    def plain() -> object:
        return [clock_event(r) for r in rows]

    def text() -> object:  # the JSON part of one_event alone
        return json.dumps(json.loads(saved_text))

    return {
        "whole": whole,
        "one_event": one_event,
        "replan": replan,
        "plain": plain,
        "json": text,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is printed")
    args = parser.parse_args(argv)
    config = load_config(None, env={}, database_url="sqlite://")
    clocks = TicketClocks(config.policies, TwoVersions())
    calls = measures(clocks)
    repeats = {"whole": 2000, "one_event": 2000, "replan": 10, "plain": 20000, "json": 20000}
    best = {
        name: min(cpu(calls[name], repeats[name]) for _ in range(args.rounds)) for name in calls
    }
    n = len(LOG)
    print(f"clock replay CPU (standard policy, 2-version calendar; best of {args.rounds} rounds)")
    print(f"  whole log of {n} events: {best['whole']:7.1f} us ({best['whole'] / n:5.1f} us/event)")
    print(f"  ceiling (plain loop):    {best['plain']:7.1f} us ({best['plain'] / n:5.1f} us/event)")
    print(f"  resume + 1 event + JSON: {best['one_event']:7.1f} us")
    print(f"    of which JSON text:    {best['json']:7.1f} us (json.loads + json.dumps)")
    rate = 200 / (best["replan"] / 1e6)
    print(f"  re-plan replay:          {rate:9,.0f} tickets/s ({best['replan'] / 200:.1f} us each)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
