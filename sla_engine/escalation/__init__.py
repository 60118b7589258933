"""Escalations: timer rows planned with each ticket write, fired into an outbox, delivered
with leases by any number of worker processes (see docs/ESCALATIONS.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.times import iso
from sla_engine.escalation import outbox
from sla_engine.escalation.models import EscalationDelivery
from sla_engine.escalation.scheduler import EscalationEngine
from sla_engine.escalation.settings import EscalationSettings
from sla_engine.escalation.timers import Calendars, EscalationTimerHook, default_calendars
from sla_engine.json_types import JsonObject


def delivery_view(row: EscalationDelivery) -> JsonObject:
    """One outbox row as the API and the CLI show it; `id` is its `webhook-id`."""
    return {
        "id": row.id,
        "ticket": row.ticket_id,
        "metric": row.metric,
        "cycle": row.cycle,
        "threshold": row.threshold,
        "destination": row.destination,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "due_at": iso(row.due_at),
        "not_before": iso(row.not_before),
        "sent_at": iso(row.sent_at),
        "last_status": row.last_status,
        "last_error": row.last_error,
    }


class EscalationLog:
    """Listing and replaying deliveries (HTTP and CLI)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.wake = wake

    def list(
        self, *, ticket: str | None = None, status: str | None = None, limit: int = 500
    ) -> list[JsonObject]:
        with self.sessions.begin() as session:
            rows = outbox.list_deliveries(session, ticket=ticket, status=status, limit=limit)
            return [delivery_view(r) for r in rows]

    def replay(self, delivery_id: str) -> JsonObject:
        with self.sessions.begin() as session:
            view = delivery_view(outbox.replay(session, delivery_id, now=self.clock()))
        if self.wake is not None:
            self.wake()
        return view


@dataclass
class Escalations:
    """The escalation part as the composition root wires it."""

    hook: EscalationTimerHook
    engine: EscalationEngine
    log: EscalationLog

    def start(self) -> Callable[[], None]:
        return self.engine.start()


def build_escalations(
    config: ServiceConfig,
    sessions: sessionmaker[Session],
    *,
    clock: Callable[[], datetime],
    settings: EscalationSettings | None = None,
    calendars: Calendars = default_calendars,
    history: bool = False,
) -> Escalations:
    engine = EscalationEngine(
        sessions,
        destinations=config.destinations,
        policies=config.policies,
        settings=settings,
        clock=clock,
        calendars=calendars,
    )
    hook = EscalationTimerHook(
        config.policies, config.destinations, calendars=calendars, wake=engine.wake, history=history
    )
    return Escalations(hook=hook, engine=engine, log=EscalationLog(sessions, clock, engine.wake))


__all__ = [
    "EscalationEngine",
    "EscalationLog",
    "EscalationSettings",
    "EscalationTimerHook",
    "Escalations",
    "build_escalations",
    "delivery_view",
]
