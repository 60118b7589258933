"""Delivery: claim due outbox rows, send them, then record each outcome fenced on the lease.

The send happens outside any transaction (claim commits first), so a crash between send
and commit leaves the row leased; once the lease expires another worker resends it with
the same `webhook-id` (at-least-once; receivers deduplicate on the id).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue

from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import Destination
from sla_engine.escalation import outbox, prometheus, store
from sla_engine.escalation.faults import fault_point
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
from sla_engine.escalation.planning import severity
from sla_engine.escalation.settings import EscalationSettings

log = logging.getLogger(__name__)


@dataclass
class DeliverReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    full_batch: bool = False


def render(item: Claimed, destination: Destination) -> tuple[str, dict[str, str]]:
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


def refusal(
    item: Claimed, destination: Destination | None, disabled: set[str], max_attempts: int
) -> Outcome | None:
    """Why a claimed delivery goes dead without a send (None: send it): its destination is
    unknown or disabled, or it has used up its attempts (a lease that expired mid-send)."""
    if destination is None:
        return Outcome("dead", None, f"unknown destination {item.destination!r}")
    if item.destination in disabled:
        return Outcome(
            "dead", None, f"destination {item.destination!r} is disabled (it answered 410 Gone)"
        )
    if item.attempts > max_attempts:
        return Outcome("dead", None, f"gave up after {item.attempts - 1} attempts")
    return None


def retry_delay(
    attempts: int,
    retry_after: timedelta | None,
    settings: EscalationSettings,
    rng: random.Random | None = None,
) -> timedelta:
    """How long a failed attempt waits: exponential backoff with jitter, or longer when the
    destination asked for it (`Retry-After`, capped)."""
    delay = backoff(
        attempts,
        timedelta(seconds=settings.backoff_base_s),
        timedelta(seconds=settings.backoff_cap_s),
        rng,
    )
    if retry_after is not None:
        delay = max(delay, min(retry_after, timedelta(seconds=settings.retry_after_cap_s)))
    return delay


class Deliverer:
    """Claims, sends and completes deliveries for one worker."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        destinations: Mapping[str, Destination],
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
            disabled = store.disabled_destinations(session) if claimed else set()
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
        refused = refusal(item, destination, disabled, self.settings.max_attempts)
        if refused is not None:
            return refused
        assert destination is not None  # refusal() answers for a missing one
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
                    prometheus.LAG.observe(max((sent_at - item.due_at).total_seconds(), 0.0))
            for destination, count in sent_to.items():
                prometheus.SENT.labels(destination).inc(count)

    def _record(
        self,
        session: Session,
        item: Claimed,
        outcome: Outcome,
        now: datetime,
        report: DeliverReport,
    ) -> None:
        if outcome.result == "retry" and item.attempts < self.settings.max_attempts:
            delay = retry_delay(item.attempts, outcome.retry_after, self.settings)
            if outbox.retry_later(
                session,
                item,
                now=now,
                at=now + delay,
                status=outcome.status,
                error=outcome.error or "retry",
            ):
                report.retried += 1
                prometheus.RETRIED.labels(item.destination).inc()
                log.warning(
                    "escalation %s of ticket %s, metric %s (%s) to %s: attempt %d failed (%s); "
                    "retrying in %.0f s",
                    item.id,
                    item.ticket_id,
                    item.metric,
                    item.threshold,
                    item.destination,
                    item.attempts,
                    outcome.error or outcome.status,
                    delay.total_seconds(),
                    extra=_log_fields(item),
                )
            else:
                report.lost_lease += 1
            return
        error = outcome.error or "failed"
        if outcome.result == "retry":
            error = f"{error}; gave up after {item.attempts} attempts"
        if outbox.give_up(session, item, now=now, status=outcome.status, error=error):
            report.dead += 1
            prometheus.DEAD.labels(item.destination).inc()
            log.error(
                "escalation %s of ticket %s, metric %s (%s) to %s is dead: %s "
                "(replay it with `sla-engine escalations replay %s`)",
                item.id,
                item.ticket_id,
                item.metric,
                item.threshold,
                item.destination,
                error,
                item.id,
                extra=_log_fields(item),
            )
        else:
            report.lost_lease += 1
        if outcome.result == "gone":
            store.disable_destination(session, item.destination, now=now, reason=error)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.sender.close()


def _log_fields(item: Claimed) -> dict[str, object]:
    """The delivery's names as separate fields of a JSON log line."""
    return {
        "escalation_id": item.id,
        "ticket_id": item.ticket_id,
        "metric": item.metric,
        "destination": item.destination,
        "attempts": item.attempts,
    }
