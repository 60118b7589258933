"""A ticket write killed (SIGKILL) between any two of its statements leaves a saved clock that
still equals the whole-log replay: the event, the saved clock, the checkpoints and the metric
rows are one transaction.

A child process posts events (in order and late) to a few tickets and kills itself with SIGKILL
right before its Nth SQL statement, for many N; the next child carries on with the same
tickets. At the end every ticket's saved clock, checkpoints and metric rows are checked
against a replay of its log.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from sla_engine.config import load_config
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.storage.models import Ticket, TicketCheckpoint, TicketMetric
from sla_engine.tickets import METRIC_FIELDS, TicketService, metric_rows, store
from sla_engine.tickets.metric_rows import metric_values

pytestmark = [pytest.mark.process, pytest.mark.slow]

CHILD = textwrap.dedent(
    """
    import os, random, signal, sys
    from datetime import UTC, datetime, timedelta
    from sqlalchemy import event
    from sla_engine.config import load_config
    from sla_engine.storage.db import make_engine, make_sessionmaker
    from sla_engine.tickets import EventCreate, TicketCreate, TicketService
    from sla_engine.errors import SlaEngineError

    url, seed, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    T0 = datetime(2026, 11, 23, 7, tzinfo=UTC)
    engine = make_engine(url)
    count = 0

    @event.listens_for(engine, "before_cursor_execute")
    def maybe_die(*args):
        global count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    service = TicketService(
        make_sessionmaker(engine),
        load_config(None, env={}, database_url=url),
        clock=lambda: T0 + timedelta(days=10),
    )
    service.clocks.every = 4
    kinds = ["customer_reply", "agent_reply", "pending", "open", "solved", "reopened"]
    for n in range(3):
        service.create_ticket(TicketCreate(f"K-{n}", "standard", T0))
    for i in range(200):
        ticket = f"K-{rng.randrange(3)}"
        minute = rng.randrange(0, 3 * 24 * 60)
        req = EventCreate(f"s{seed}-{i}", rng.choice(kinds), T0 + timedelta(minutes=minute))
        service.add_event(ticket, req)
    print("finished", count)
    """
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_between_statements_keeps_saved_clocks_exact(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    upgrade(url)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(7)
    killed = 0
    for seed in range(8):
        kill_at = rng.randrange(5, 400)
        done = subprocess.run(
            [sys.executable, str(script), url, str(seed), str(kill_at)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert done.returncode == 0, done.stderr
    assert killed >= 5

    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    service = TicketService(maker, load_config(None, env={}, database_url=url))
    service.clocks.every = 4
    try:
        with maker() as session:
            tickets = list(session.scalars(select(Ticket)))
            assert len(tickets) == 3
            for ticket in tickets:
                rows = store.event_rows(session, ticket.id)
                whole = service.clocks.replay_rows(ticket, rows)
                saved = dict(ticket.clock_state or {})
                written = saved.pop("rows")
                assert saved == service.clocks.to_json(whole)
                ordered = sorted(rows, key=lambda r: (r.occurred_at, r.seq))
                for checkpoint in session.scalars(
                    select(TicketCheckpoint).where(TicketCheckpoint.ticket_id == ticket.id)
                ):
                    position = (checkpoint.occurred_at, checkpoint.seq)
                    upto = [r for r in ordered if (r.occurred_at, r.seq) <= position]
                    assert checkpoint.state == service.clocks.to_json(
                        service.clocks.replay_rows(ticket, upto)
                    )
                stored = {
                    m.metric: {k: getattr(m, k) for k in METRIC_FIELDS}
                    for m in session.scalars(
                        select(TicketMetric).where(TicketMetric.ticket_id == ticket.id)
                    )
                }
                assert written == metric_rows.encoded_metric_rows(stored)
                # the rows are those of the state at the last write (its `now` is fixed)
                last = service.evaluate_log(ticket, rows, max(r.received_at for r in rows))
                assert stored == metric_values(last)
    finally:
        engine.dispose()
