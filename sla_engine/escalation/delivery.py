"""Delivery: claim due outbox rows, send them, then record each outcome fenced on the lease.

The send happens outside any transaction (claim commits first), so a crash between send
and commit leaves the row leased; once the lease expires another worker resends it with
the same `webhook-id` (at-least-once; receivers deduplicate on the id).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.escalation import metrics, outbox
from sla_engine.escalation.faults import fault_point
from sla_engine.escalation.models import DestinationState
from sla_engine.escalation.notifiers import (
    HttpSender,
    Outcome,
    backoff,
    dedup_key,
    dumps,
    pagerduty_body,
    webhook_headers,
)
from sla_engine.escalation.outbox import Claimed
from sla_engine.escalation.rules import severity
from sla_engine.escalation.settings import EscalationSettings


@dataclass
class DeliverReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    full_batch: bool = False


def render(item: Claimed, destination: Any) -> tuple[str, dict[str, str]]:
    """The body and headers of one attempt. Webhooks are signed over the exact body text
    with the attempt's timestamp; the `webhook-id` is the delivery id on every attempt."""
    if destination.type == "pagerduty":
        event = json.loads(item.payload)
        body = dumps(
            pagerduty_body(
                item.kind,
                event,
                destination.routing_key,
                dedup_key(item.ticket_id, item.metric, item.cycle),
                severity(item.threshold),
            )
        )
        headers = {"content-type": "application/json", "webhook-id": item.id}
        return body, headers
    return item.payload, webhook_headers(
        destination.secret, item.id, int(time.time()), item.payload
    )


class Deliverer:
    """Claims, sends and completes deliveries for one worker."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        destinations: Mapping[str, Any],
        settings: EscalationSettings,
        *,
        clock: Callable[[], datetime],
        worker: str,
        sender: HttpSender | None = None,
    ) -> None:
        self.sessions = sessions
        self.destinations = destinations
        self.settings = settings
        self.clock = clock
        self.worker = worker
        self.sender = sender or HttpSender(settings.send_timeout_s)
        self.pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="sla-send")

    def deliver_due(self, now: datetime) -> DeliverReport:
        with self.sessions.begin() as session:
            claimed = outbox.claim(
                session,
                now=now,
                lease=self.settings.lease,
                limit=self.settings.claim_limit,
                worker=self.worker,
            )
            disabled = set(session.scalars(sa.select(DestinationState.name))) if claimed else set()
        report = DeliverReport(
            claimed=len(claimed), full_batch=len(claimed) >= self.settings.claim_limit
        )
        if not claimed:
            return report
        fault_point("after_claim")
        outcomes = self._send_all(claimed, disabled)
        fault_point("after_send")
        with self.sessions.begin() as session:
            self._record_sent(session, claimed, outcomes, report)
            for item, outcome in zip(claimed, outcomes, strict=True):
                if outcome.result != "sent":
                    self._record(session, item, outcome, now, report)
        fault_point("after_commit")
        return report

    def _send_all(self, claimed: list[Claimed], disabled: set[str]) -> list[Outcome]:
        """Send a claimed batch on up to `concurrency` threads, each taking the next unsent
        item until none is left: a slow destination holds one thread, not the batch, and
        there is no task per item (which cost more CPU than the request itself)."""
        outcomes: list[Outcome | None] = [None] * len(claimed)
        waiting: SimpleQueue[int] = SimpleQueue()
        for index in range(len(claimed)):
            waiting.put(index)

        def drain() -> None:
            while True:
                try:
                    index = waiting.get_nowait()
                except Empty:
                    return
                outcomes[index] = self._attempt(claimed[index], disabled)

        senders = [
            self.pool.submit(drain) for _ in range(min(self.settings.concurrency, len(claimed)))
        ]
        for sender in senders:
            sender.result()
        return [outcome for outcome in outcomes if outcome is not None]

    def _attempt(self, item: Claimed, disabled: set[str]) -> Outcome:
        destination = self.destinations.get(item.destination)
        if destination is None:
            return Outcome("dead", None, f"unknown destination {item.destination!r}")
        if item.destination in disabled:
            return Outcome(
                "dead", None, f"destination {item.destination!r} is disabled (it answered 410 Gone)"
            )
        if item.attempts > self.settings.max_attempts:
            return Outcome("dead", None, f"gave up after {item.attempts - 1} attempts")
        body, headers = render(item, destination)
        return self.sender.post(destination.url, body, headers)

    def _record_sent(
        self,
        session: Session,
        claimed: list[Claimed],
        outcomes: list[Outcome],
        report: DeliverReport,
    ) -> None:
        """Complete the successful sends, one statement per HTTP status (fenced on the lease)."""
        sent_at = self.clock()
        by_status: dict[int | None, list[Claimed]] = {}
        for item, outcome in zip(claimed, outcomes, strict=True):
            if outcome.result == "sent":
                by_status.setdefault(outcome.status, []).append(item)
        for status, items in by_status.items():
            done = outbox.complete_many(session, items, now=sent_at, status=status)
            report.lost_lease += len(items) - len(done)
            report.sent += len(done)
            sent_to: Counter[str] = Counter()
            for item in items:
                if item.id in done:
                    sent_to[item.destination] += 1
                    metrics.LAG.observe(max((sent_at - item.due_at).total_seconds(), 0.0))
            for destination, count in sent_to.items():
                metrics.SENT.labels(destination).inc(count)

    def _record(
        self,
        session: Session,
        item: Claimed,
        outcome: Outcome,
        now: datetime,
        report: DeliverReport,
    ) -> None:
        if outcome.result == "retry" and item.attempts < self.settings.max_attempts:
            delay = backoff(
                item.attempts,
                timedelta(seconds=self.settings.backoff_base_s),
                timedelta(seconds=self.settings.backoff_cap_s),
            )
            if outcome.retry_after is not None:
                cap = timedelta(seconds=self.settings.retry_after_cap_s)
                delay = max(delay, min(outcome.retry_after, cap))
            if outbox.retry_later(
                session,
                item,
                now=now,
                at=now + delay,
                status=outcome.status,
                error=outcome.error or "retry",
            ):
                report.retried += 1
                metrics.RETRIED.labels(item.destination).inc()
            else:
                report.lost_lease += 1
            return
        error = outcome.error or "failed"
        if outcome.result == "retry":
            error = f"{error}; gave up after {item.attempts} attempts"
        if outbox.give_up(session, item, now=now, status=outcome.status, error=error):
            report.dead += 1
            metrics.DEAD.labels(item.destination).inc()
        else:
            report.lost_lease += 1
        if outcome.result == "gone":
            disable_destination(session, item.destination, now=now, reason=error)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.sender.close()


def disable_destination(session: Session, name: str, *, now: datetime, reason: str) -> None:
    """Record a destination as disabled; a no-op when another worker already did."""
    values = {"name": name, "disabled_at": now, "reason": reason}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(DestinationState).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(DestinationState).values(values).on_conflict_do_nothing())
