"""One metric's timer rows brought to its plan: its thresholds and its next repeat.

A running metric's planned timers are created or moved (a live row in a new generation, a
history row in place); the pending rows the plan no longer has are cancelled, or removed when
they were planned while loading history. With `history` (bulk imports of past tickets) a
threshold already due is recorded as `skipped` instead of pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sla_engine.core.clock import MetricState
from sla_engine.core.policies import MetricPolicy
from sla_engine.escalation.planning import (
    PlannedTimer,
    next_repeat_after,
    plan_repeat,
    plan_thresholds,
    repeat_number,
)
from sla_engine.escalation.timer_rows import (
    AnyTimer,
    TimerWrites,
    cancel,
    from_history,
    move,
    replan,
    skip,
    utc,
)


def follow_plan(
    writes: TimerWrites,
    ticket_id: str,
    policy: str,
    metric_state: MetricState,
    metric_policy: MetricPolicy | None,
    now: datetime,
    rows: Sequence[AnyTimer],
    *,
    running: bool,
    history: bool,
) -> datetime | None:
    """Write the metric's plan over its `rows`; returns the earliest pending due time."""
    planned = plan(writes, rows, metric_state, metric_policy, now, history) if running else []
    soonest = _write_plan(writes, ticket_id, policy, metric_state, planned, rows, now, history)
    wanted = {(metric_state.cycle, p.threshold) for p in planned}
    _drop_unplanned(writes, rows, wanted, now, history)
    return soonest


def plan(
    writes: TimerWrites,
    rows: Sequence[AnyTimer],
    metric_state: MetricState,
    metric_policy: MetricPolicy | None,
    now: datetime,
    history: bool,
) -> list[PlannedTimer]:
    """The timers a running metric should have: its thresholds and its next repeat."""
    if metric_policy is None or not (
        metric_policy.escalate or metric_policy.repeat_after_breach is not None
    ):
        return []
    calendar = writes.calendar(metric_state.calendar)
    planned = plan_thresholds(metric_state, metric_policy, calendar)
    history_now = now if history else None
    repeat = planned_repeat(rows, metric_state, metric_policy, history_now)
    if repeat is not None:
        planned.append(repeat)
    return planned


def planned_repeat(
    rows: Sequence[AnyTimer],
    metric_state: MetricState,
    metric_policy: MetricPolicy,
    history_now: datetime | None = None,
) -> PlannedTimer | None:
    """Only the next repeat exists as a row: after the last one fired, or the one the
    firing step already materialised. Loading history (`history_now`), the next one is
    the first still ahead of now: the repeats before it are implied skipped."""
    repeat = metric_policy.repeat_after_breach
    if repeat is None:
        return None
    done = [0]
    waiting: list[int] = []
    for row in rows:
        number = repeat_number(row.threshold)
        if row.cycle != metric_state.cycle or number is None:
            continue
        if history_now is not None and row.generation == 0:
            continue
        (done if row.status in ("fired", "skipped") else waiting).append(number)
    if history_now is not None:
        ahead = next_repeat_after(metric_state.breach_at, repeat.every, 0, history_now)
        return plan_repeat(metric_state.breach_at, repeat, max(ahead, max(done) + 1))
    number = max([max(done) + 1, *(n for n in waiting if n > max(done))])
    return plan_repeat(metric_state.breach_at, repeat, number)


def _write_plan(
    writes: TimerWrites,
    ticket_id: str,
    policy: str,
    metric_state: MetricState,
    planned: list[PlannedTimer],
    rows: Sequence[AnyTimer],
    now: datetime,
    history: bool,
) -> datetime | None:
    """Create or move the row of each planned timer; returns the earliest pending one."""
    by_key = {(r.cycle, r.threshold): r for r in rows}
    soonest: datetime | None = None
    for item in planned:
        row = by_key.get((metric_state.cycle, item.threshold))
        if row is None:
            row = writes.add(
                ticket_id=ticket_id,
                metric=metric_state.metric,
                cycle=metric_state.cycle,
                policy=policy,
                calendar=metric_state.calendar,
                breach_at=metric_state.breach_at,
                planned=item,
                now=now,
                generation=0 if history else 1,
            )
        elif history and from_history(row):
            replan(row, policy, metric_state, item, now)
        elif row.status in ("pending", "cancelled"):
            move(row, policy, metric_state, item, now)
        else:
            continue
        if history and item.due_at <= now:
            skip(row, now)
            continue
        due = utc(item.due_at)  # a plain instant: the minimum is taken in C
        soonest = due if soonest is None else min(soonest, due)
    return soonest


def _drop_unplanned(
    writes: TimerWrites,
    rows: Sequence[AnyTimer],
    wanted: set[tuple[int, str]],
    now: datetime,
    history: bool,
) -> None:
    """Cancel the pending rows the plan no longer has (history rows are removed)."""
    for row in rows:
        if (row.cycle, row.threshold) in wanted:
            continue
        if history and from_history(row):
            writes.remove(row)
        elif row.status == "pending":
            cancel(row, now)
