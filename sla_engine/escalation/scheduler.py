"""The escalation scheduler: a pure `tick(now)` and the APScheduler loop that drives it.

The database owns timing; APScheduler (in-memory job store) only wakes this process: the
poll job runs every `poll_s` (and at once when `wake()` is called, e.g. after a ticket write
planned a near timer), and a retention job prunes old rows. Any number of processes may run
the loop against one database.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import Destination
from sla_engine.core.business_calendar import CalendarLookup
from sla_engine.core.policies import Policy
from sla_engine.core.times import utcnow
from sla_engine.escalation import store
from sla_engine.escalation.delivery import Deliverer, DeliverReport
from sla_engine.escalation.firing import FireReport, TimerFiring
from sla_engine.escalation.notifiers import HttpSender
from sla_engine.escalation.settings import EscalationSettings
from sla_engine.escalation.timers import default_calendars
from sla_engine.logging_setup import OutageLog, is_database_outage

log = logging.getLogger(__name__)
FIRE_JOB = "escalations-fire"
DELIVER_JOB = "escalations-deliver"
PRUNE_JOB = "escalations-prune"
MAX_PASSES_PER_TICK = 50


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class TickReport:
    fire: FireReport
    deliver: DeliverReport


class EscalationEngine:
    """Fires due timers and delivers due notifications for one process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        destinations: Mapping[str, Destination],
        policies: Mapping[str, Policy],
        settings: EscalationSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
        calendars: CalendarLookup = default_calendars,
        sender: HttpSender | None = None,
        worker: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings or EscalationSettings.from_env()
        self.clock = clock
        self.worker = worker or worker_name()
        self.firing = TimerFiring(destinations, policies, calendars, batch=self.settings.fire_batch)
        self.deliverer = Deliverer(
            sessions, destinations, self.settings, clock=clock, worker=self.worker, sender=sender
        )
        self._scheduler: BackgroundScheduler | None = None
        self._turned_at = time.monotonic()
        self.outage = OutageLog("escalation scheduler", log)

    # -- the pure step --

    def fire_due(self, now: datetime) -> FireReport:
        with self.sessions.begin() as session:
            return self.firing.fire_due(session, now)

    def deliver_due(self, now: datetime) -> DeliverReport:
        return self.deliverer.deliver_due(now)

    def tick(self, now: datetime | None = None) -> TickReport:
        """One pass: fire what is due at `now`, then deliver what may go out at `now`."""
        when = self.clock() if now is None else now
        return TickReport(self.fire_due(when), self.deliver_due(when))

    def fire_pending(self) -> None:
        """Fire until no full batch is left (bounded, so the loop stays live)."""
        for _ in range(MAX_PASSES_PER_TICK):
            if not self.fire_due(self.clock()).full_batch:
                break
        self._turned_at = time.monotonic()

    def loop_age(self) -> float | None:
        """Seconds since the firing loop last finished a pass (or started); None when the
        loop does not run in this process. Readiness (`/readyz`) watches it."""
        if self._scheduler is None:
            return None
        return time.monotonic() - self._turned_at

    def deliver_pending(self) -> None:
        """Deliver until no full batch is left (bounded, so the loop stays live)."""
        for _ in range(MAX_PASSES_PER_TICK):
            if not self.deliver_due(self.clock()).full_batch:
                return

    def prune(self, now: datetime | None = None) -> int:
        """Delete finished rows older than the retention period."""
        when = self.clock() if now is None else now
        cutoff = when - timedelta(days=self.settings.retention_days)
        with self.sessions.begin() as session:
            return store.prune(session, cutoff)

    # -- the loop --

    def start(self) -> Callable[[], None]:
        """Start the background loops; returns the function that stops them.

        Firing and delivery are separate jobs (threads), so a slow receiver never delays
        the firing of the next due timers."""
        # "skipped: maximum number of running instances reached" is the normal case when a
        # pass outlasts the poll interval; it is not worth a warning per poll.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
        scheduler = BackgroundScheduler(timezone=UTC)
        for job_id, work in ((FIRE_JOB, self.fire_pending), (DELIVER_JOB, self.deliver_pending)):
            scheduler.add_job(
                self._guarded(work),
                "interval",
                seconds=self.settings.poll_s,
                id=job_id,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
            )
        scheduler.add_job(
            self._guarded(self.prune),
            "interval",
            hours=1,
            id=PRUNE_JOB,
            max_instances=1,
            coalesce=True,
        )
        self._turned_at = time.monotonic()
        scheduler.start()
        self._scheduler = scheduler
        return self.stop

    def wake(self) -> None:
        """Run the loops now (a nearer timer or a replay was just written in this process)."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return
        for job_id in (FIRE_JOB, DELIVER_JOB):
            try:
                scheduler.modify_job(job_id, next_run_time=utcnow())
            except Exception:  # the scheduler may be shutting down; polling covers it
                log.debug("wake ignored", exc_info=True)

    def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        self.deliverer.close()

    def _guarded(self, work: Callable[[], object]) -> Callable[[], None]:
        """`work` for the loop: a database outage is one log line per 10 s (`OutageLog`),
        any other failure a traceback; the next poll tries again either way."""

        def run() -> None:
            try:
                work()
            except Exception as exc:
                if is_database_outage(exc):
                    self.outage.failed(exc)
                    return
                log.exception(
                    "escalation job %s failed; retrying at the next poll",
                    getattr(work, "__name__", work),
                )
            else:
                self.outage.recovered()

        return run
