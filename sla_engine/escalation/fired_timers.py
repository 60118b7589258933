"""What a ticket write does about a metric's timers that already fired.

Deliveries exist only for fired timers (the firing step queues them): once a metric stops,
its queued notifications are cancelled, and a PagerDuty incident of a cycle that is over is
resolved (a `resolve` with the trigger's dedup key, after any trigger still being sent).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from sla_engine.core.clock import MetricState
from sla_engine.escalation import outbox, store
from sla_engine.escalation.planning import is_paused


def follow_up_fired(
    session: Session,
    ticket_id: str,
    metric_state: MetricState,
    running: bool,
    now: datetime,
    *,
    pagerduty: bool,
) -> None:
    """After a timer fired: a stopped metric cancels its queued notifications, and (with a
    PagerDuty destination configured) an incident of a cycle that is over is resolved."""
    if not running and not is_paused(metric_state):
        outbox.cancel_queued(
            session,
            ticket_id=ticket_id,
            metric=metric_state.metric,
            cycle=None,
            now=now,
            reason=f"metric {metric_state.status}",
        )
    if pagerduty:
        resolve_stopped_incidents(session, ticket_id, metric_state, running, now)


def resolve_stopped_incidents(
    session: Session,
    ticket_id: str,
    metric_state: MetricState,
    running: bool,
    now: datetime,
) -> None:
    """A PagerDuty `resolve` (same dedup_key) for every triggered cycle that is over."""
    triggered = store.triggered_incidents(session, ticket_id, metric_state.metric)
    for cycle, destination, in_flight_until in triggered:
        if running and cycle == metric_state.cycle:
            continue
        if is_paused(metric_state) and cycle == metric_state.cycle:
            continue
        payload = json.dumps(
            {
                "ticket_id": ticket_id,
                "metric": metric_state.metric,
                "cycle": cycle,
                "status": metric_state.status,
            }
        )
        # A trigger still being sent goes first: the resolve waits for its lease.
        not_before = max(now, in_flight_until or now)
        outbox.enqueue(
            session,
            outbox.new_delivery(
                ticket_id=ticket_id,
                metric=metric_state.metric,
                cycle=cycle,
                threshold="resolve",
                destination=destination,
                kind="resolve",
                payload=payload,
                due_at=now,
                not_before=not_before,
                now=now,
            ),
        )
