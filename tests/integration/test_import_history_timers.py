"""The escalation timer hook in history mode (what an import runs): thresholds already due are
recorded as skipped, later ones pending, the repeat after breach is the first still ahead,
and a row so planned that a later state no longer plans is removed, so the rows follow the
ticket's latest state whatever the writes were. Live mode is unchanged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from sla_engine.escalation.models import EscalationTimer
from sla_engine.tickets import EventCreate, TicketCreate
from tests.support.ingest import NOW, services_at, write_config


def _timers(svc, ticket_id: str) -> dict[str, tuple[str, int]]:  # type: ignore[no-untyped-def]
    with svc.sessionmaker() as session:
        rows = session.scalars(
            sa.select(EscalationTimer).where(EscalationTimer.ticket_id == ticket_id)
        ).all()
        return {f"{r.metric}/{r.threshold}": (r.status, r.generation) for r in rows}


def test_history_mode(tmp_path: Path, sqlite_url: str) -> None:
    with services_at(write_config(tmp_path, sqlite_url), history=True) as svc:
        old = NOW - timedelta(days=2)
        svc.tickets.create_ticket(TicketCreate(id="H-1", policy="standard", created_at=old))
        first = {k: v for k, v in _timers(svc, "H-1").items() if k.startswith("first_response")}
        assert first["first_response/75%"] == ("skipped", 0)
        assert first["first_response/100%"] == ("skipped", 0)
        (repeat,) = [k for k in first if "repeat:" in k]
        assert first[repeat] == ("pending", 0)
        with svc.sessionmaker() as session:
            due = session.scalar(
                sa.select(EscalationTimer.due_at).where(
                    EscalationTimer.ticket_id == "H-1", EscalationTimer.threshold == repeat[15:]
                )
            )
        assert NOW < due <= NOW + timedelta(hours=1)  # the first repeat still ahead

        # the reply came before any threshold: the planned rows go, none is left cancelled
        reply = EventCreate("r", "agent_reply", old + timedelta(minutes=10))
        svc.tickets.add_event("H-1", reply)
        assert not any(k.startswith("first_response") for k in _timers(svc, "H-1"))

        recent = NOW - timedelta(minutes=30)
        svc.tickets.create_ticket(TicketCreate(id="H-2", policy="standard", created_at=recent))
        assert _timers(svc, "H-2")["first_response/75%"] == ("pending", 0)


def test_live_mode_is_unchanged(tmp_path: Path, sqlite_url: str) -> None:
    with services_at(write_config(tmp_path, sqlite_url), history=False) as svc:
        old = NOW - timedelta(days=2)
        svc.tickets.create_ticket(TicketCreate(id="L-1", policy="standard", created_at=old))
        assert _timers(svc, "L-1")["first_response/75%"] == ("pending", 1)
        svc.tickets.add_event("L-1", EventCreate("r", "agent_reply", old + timedelta(minutes=10)))
        assert _timers(svc, "L-1")["first_response/75%"] == ("cancelled", 2)
