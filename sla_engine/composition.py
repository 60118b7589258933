"""Composition root: builds the engine's services from a ServiceConfig.

The only module that knows every part; the parts know nothing of each other beyond the hooks
they are given here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.tickets import TicketService, utcnow


@dataclass
class Services:
    config: ServiceConfig
    engine: Engine
    sessionmaker: sessionmaker[Session]
    clock: Callable[[], datetime]
    tickets: TicketService
    # Filled in by the credits and escalation parts (see build_services).
    credits: Any = None
    escalations: Any = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def start_background(self) -> None:
        """Start the in-process loops (escalation scheduler, housekeeping)."""
        if self.escalations is not None:  # ESCALATION
            self._stoppers.append(self.escalations.start())  # ESCALATION
        from sla_engine.credits.housekeeping import start_housekeeping  # CREDITS

        self._stoppers.append(start_housekeeping(self.sessionmaker, self.clock))  # CREDITS

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()
        self.engine.dispose()


def build_services(
    config: ServiceConfig,
    *,
    clock: Callable[[], datetime] = utcnow,
    migrate: bool = True,
) -> Services:
    if migrate:
        upgrade(config.database_url)
    engine = make_engine(config.database_url)
    maker = make_sessionmaker(engine)
    hooks: list[Any] = []
    from sla_engine.credits.credit_service import CreditService  # CREDITS

    credits = CreditService(maker, config, clock=clock)  # CREDITS
    hooks.append(credits.hook)  # CREDITS
    from sla_engine.escalation import build_escalations  # ESCALATION

    escalations = build_escalations(config, maker, clock=clock)  # ESCALATION
    hooks.append(escalations.hook)  # ESCALATION
    tickets = TicketService(maker, config, clock=clock, hooks=hooks)
    credits.attach(tickets)  # CREDITS
    return Services(
        config=config,
        engine=engine,
        sessionmaker=maker,
        clock=clock,
        tickets=tickets,
        credits=credits,  # CREDITS
        escalations=escalations,  # ESCALATION
    )
