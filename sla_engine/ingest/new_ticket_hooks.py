"""The state hooks run once on each ticket an import chunk creates, in bulk where they allow.

A ticket the chunk creates has no timer rows and no queue calendar rows yet, so each hook's
read of them can be skipped and its inserts made together:

- the escalation timer hook plans each metric with no rows (`sync_metric(rows=[])`);
- the queue hook's keys go on the ticket row (`ticket_queue.keys.set_keys`, as the hook puts
  them), and the calendar rows of all the new tickets are inserted in one statement;
- any other hook runs its own `on_state`, one ticket at a time.

`tests/integration/test_import_equivalence.py` holds the result to single calls'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sla_engine.core.clock import TicketState
from sla_engine.escalation.timers import EscalationTimerHook
from sla_engine.ingest.bulk_rows import insert_rows
from sla_engine.ticket_queue import QueueHook
from sla_engine.ticket_queue.keys import CALENDARS, queue_keys, set_keys

NewStates = Sequence[tuple[Any, TicketState]]
_CALENDAR_COLUMNS = ("ticket_id", "calendar", "queue_breach_at", "created_at")


def for_new_tickets(hooks: Sequence[Any]) -> list[Callable[[Session, NewStates, datetime], None]]:
    """One bulk step per state hook, run in hook order."""
    steps: list[Callable[[Session, NewStates, datetime], None]] = []
    for hook in hooks:
        if isinstance(hook, EscalationTimerHook):
            steps.append(_timers(hook))
        elif isinstance(hook, QueueHook):
            steps.append(_queue_keys)
        else:
            steps.append(_one_by_one(hook))
    return steps


def _timers(hook: EscalationTimerHook) -> Callable[[Session, NewStates, datetime], None]:
    def run(session: Session, items: NewStates, now: datetime) -> None:
        if not hook.enabled:
            return
        for _, state in items:
            policy = hook.policies.get(state.policy)
            for name, metric_state in state.metrics.items():
                metric_policy = policy.metrics.get(name) if policy is not None else None
                ticket_id, policy_name = state.ticket_id, state.policy
                hook.sync_metric(
                    session, ticket_id, policy_name, metric_state, metric_policy, now, rows=[]
                )

    return run


def _queue_keys(session: Session, items: NewStates, now: datetime) -> None:
    rows: list[dict[str, Any]] = []
    for ticket, state in items:
        rows.extend(set_keys(ticket, queue_keys(state)))
    if rows:
        columns = tuple(rows[0])
        insert_rows(session, CALENDARS, columns, [tuple(r[c] for c in columns) for r in rows])


def _one_by_one(hook: Any) -> Callable[[Session, NewStates, datetime], None]:
    def run(session: Session, items: NewStates, now: datetime) -> None:
        for ticket, state in items:
            hook.on_state(session, ticket, state, now)

    return run
