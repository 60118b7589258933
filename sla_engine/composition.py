"""Composition root: builds the engine's services from a ServiceConfig.

The only module that knows every part; the parts know nothing of each other beyond the hooks
they are given here.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.calendar_store import CalendarStore, StoredCalendars, build_calendar_store
from sla_engine.config import ServiceConfig
from sla_engine.core.calendar_source import CalendarSource
from sla_engine.core.times import utcnow
from sla_engine.credits.credit_hook import CreditHook
from sla_engine.credits.credit_service import CreditService
from sla_engine.credits.housekeeping import start_housekeeping
from sla_engine.errors import CalendarError, ConfigError
from sla_engine.escalation import Escalations, build_escalations
from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade
from sla_engine.ticket_queue import QueueHook
from sla_engine.tickets import TicketService

GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds in a long-running process (Python's are 700, 10, 10)."""


def tune_gc_for_service() -> None:
    """For a long-running process, once its services are built: what start-up made stays
    (frozen: never scanned again) and the collector runs less often, as a re-plan batch or a
    busy API allocates many short-lived objects (docs/CALENDARS.md has the figures)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass
class Services:
    config: ServiceConfig
    engine: Engine
    sessionmaker: sessionmaker[Session]
    clock: Callable[[], datetime]
    tickets: TicketService
    credits: CreditService
    escalations: Escalations
    calendar_store: CalendarStore | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def start_background(self) -> None:
        """Start the in-process loops (escalation scheduler, housekeeping)."""
        self._stoppers.append(self.escalations.start())
        self._stoppers.append(start_housekeeping(self.sessionmaker, self.clock))
        if self.calendar_store is not None:
            self._stoppers.append(self.calendar_store.start())

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()
        if self.calendar_store is not None:
            self.calendar_store.close()
        self.engine.dispose()


def build_services(
    config: ServiceConfig,
    *,
    clock: Callable[[], datetime] = utcnow,
    migrate: bool = True,
    history: bool = False,
) -> Services:
    """The engine's services; `history=True` for bulk imports of past tickets (escalations
    already due are recorded as skipped, see `EscalationTimerHook`)."""
    if migrate:
        upgrade(config.database_url)
    engine = make_engine(config.database_url)
    maker = make_sessionmaker(engine)
    # Calendars: the files (each recorded as version 1) and the versions stored since; the
    # ticket service reads them, and a new version re-plans its stored tickets.
    calendars = StoredCalendars(engine)
    tickets = TicketService(maker, config, clock=clock, calendars=calendars)
    calendar_store = build_calendar_store(engine, maker, clock, source=calendars, tickets=tickets)
    try:
        _check_stored_calendars(config, calendar_store.source)
    except ConfigError:
        calendar_store.close()
        engine.dispose()
        raise
    # Hooks run in this order inside each ticket write: credits first (a refused credit
    # rolls the write back before any timer is planned), then escalation timers.
    tickets.add_hook(
        CreditHook(products=config.products, policies=config.policies, tickets=tickets)
    )
    escalations = build_escalations(
        config, maker, clock=clock, history=history, calendars=calendar_store.source
    )
    tickets.add_hook(escalations.hook)
    tickets.add_hook(QueueHook())  # the ticket row's queue keys (GET /v1/tickets)
    credits = CreditService(maker, config, clock=clock)
    return Services(
        config=config,
        engine=engine,
        sessionmaker=maker,
        clock=clock,
        tickets=tickets,
        credits=credits,
        escalations=escalations,
        calendar_store=calendar_store,
    )


def _check_stored_calendars(config: ServiceConfig, source: CalendarSource) -> None:
    """Policies may name calendars stored in the database; one stored nowhere is refused now,
    not when the first ticket arrives."""
    for name, key in config.stored_calendars.items():
        try:
            source.calendar(name)
        except CalendarError as exc:
            file = config.path or "<defaults>"
            raise ConfigError(
                f"{file}: {key} = {name!r}: unknown calendar (no calendar file of that name, "
                "and none stored in the database)",
                field=key,
                value=name,
            ) from exc
