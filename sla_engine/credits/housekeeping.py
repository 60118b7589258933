"""Daily housekeeping: book credit expirations in the ledger.

Balances never depend on it (expiry is derived from each lot's `expires_at`); it only makes
the ledger say, as entries, what expiry already means, so the ledger's plain sum matches the
balances. Idempotent: each run books only what is not booked yet, under the account lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.core.times import utcnow
from sla_engine.credits import store

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = timedelta(days=1)


def record_expirations(session: Session, now: datetime) -> int:
    """Append `expiry` entries for lots expired by `now` with credits left; returns how many."""
    appended = 0
    for account in store.accounts_with_expired_lots(session, now):
        store.lock_account(session, account, now)
        drafts = store.load_ledger(session, account).expirations_due(now)
        store.append(session, account, drafts, now)
        appended += len(drafts)
    return appended


def run_housekeeping(maker: sessionmaker[Session], clock: Callable[[], datetime]) -> int:
    """One housekeeping pass in its own transaction."""
    with maker() as session, session.begin():
        count = record_expirations(session, clock())
    log.info("credit housekeeping: %d expiry entries recorded", count)
    return count


def start_housekeeping(
    maker: sessionmaker[Session], clock: Callable[[], datetime]
) -> Callable[[], None]:
    """Run housekeeping now and then daily in a background scheduler; returns its stopper."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        run_housekeeping,
        IntervalTrigger(days=1, timezone="UTC"),
        args=(maker, clock),
        id="credit-housekeeping",
        next_run_time=utcnow(),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(HOUSEKEEPING_EVERY.total_seconds()),
    )
    scheduler.start()

    def stop() -> None:
        scheduler.shutdown(wait=False)

    return stop
