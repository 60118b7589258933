"""PURE escalation planning: a running metric and its rules become dated timers.

No I/O and no clock: every function takes the instant it reasons about. The timer hook
(`timers.py`) and the firing step (`firing.py`) apply these plans to rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sla_engine.core.business_calendar import BusinessCalendar
from sla_engine.core.clock import MetricState
from sla_engine.core.policies import EscalationRule, MetricPolicy, RepeatRule, parse_threshold
from sla_engine.json_types import JsonObject

RUNNING_STATUSES = frozenset({"active", "breached"})
BREACH_THRESHOLD = "100%"
REPEAT_PREFIX = "repeat:"


@dataclass(frozen=True)
class Target:
    """One destination of a threshold, optionally held until a calendar is open."""

    to: str
    during: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"to": self.to, "during": self.during}


@dataclass(frozen=True)
class PlannedTimer:
    """A threshold of one metric cycle and when it becomes due."""

    threshold: str
    due_at: datetime
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class DueTimer:
    """A due timer as the firing step sees it (an id plus its key and due time)."""

    id: int
    group: tuple[str, str, int]
    due_at: datetime


def is_paused(metric_state: MetricState) -> bool:
    return metric_state.paused or metric_state.status == "paused"


def is_running(metric_state: MetricState) -> bool:
    """A metric whose clock runs now: active, or breached but not yet stopped (not paused)."""
    if is_paused(metric_state) or not metric_state.running:
        return False
    return metric_state.status in RUNNING_STATUSES and metric_state.stopped_at is None


def threshold_due(
    rule: EscalationRule, metric_state: MetricState, calendar: BusinessCalendar
) -> datetime:
    """When rule `at` is reached, in business time of the metric's calendar.

    A fraction sits at the same business-time position the breach uses: the clock's
    `when_spent(fraction * breach)` (it knows paused time, re-targets and calendar switches).
    An offset is counted back from the breach: `subtract(breach_at, offset)`.
    """
    fraction, offset = _threshold(rule.at)
    breach_at = metric_state.breach_at
    if offset is not None:
        return calendar.subtract(breach_at, abs(offset))
    assert fraction is not None
    if fraction >= 1:
        return breach_at
    return min(metric_state.when_spent(metric_state.breach * fraction, calendar), breach_at)


@lru_cache(maxsize=256)
def _threshold(at: str) -> tuple[float | None, timedelta | None]:
    """`parse_threshold(at)`, once per distinct `at` (planning asks for every timer)."""
    return parse_threshold(at)


def plan_thresholds(
    metric_state: MetricState, metric_policy: MetricPolicy, calendar: BusinessCalendar
) -> list[PlannedTimer]:
    """The `escalate` thresholds of a running metric's current cycle, merged by `at`."""
    by_threshold: dict[str, tuple[datetime, list[Target]]] = {}
    for rule in metric_policy.escalate:
        due = threshold_due(rule, metric_state, calendar)
        key = rule.at.strip()
        _, targets = by_threshold.setdefault(key, (due, []))
        target = Target(rule.to, rule.during)
        if target not in targets:
            targets.append(target)
    return [PlannedTimer(k, due, tuple(ts)) for k, (due, ts) in by_threshold.items()]


def repeat_threshold(number: int) -> str:
    return f"{REPEAT_PREFIX}{number}"


def repeat_number(threshold: str) -> int | None:
    if not threshold.startswith(REPEAT_PREFIX):
        return None
    return int(threshold[len(REPEAT_PREFIX) :])


def plan_repeat(breach_at: datetime, repeat: RepeatRule, number: int) -> PlannedTimer:
    """Repeat `number` (1, 2, ...): `number * every` of real time after the breach."""
    return PlannedTimer(
        repeat_threshold(number),
        breach_at + repeat.every * number,
        (Target(repeat.to, repeat.during),),
    )


def next_repeat_after(
    breach_at: datetime, every: timedelta, fired_number: int, now: datetime
) -> int:
    """The repeat to materialise after `fired_number` fired at `now`: the next one whose due
    time is still ahead, so a late firing resumes from now instead of bursting."""
    number = fired_number + 1
    if breach_at + every * number <= now:
        behind = (now - breach_at) // every
        number = max(number, int(behind) + 1)
    return number


def choose_firing(due: Iterable[DueTimer]) -> tuple[list[DueTimer], list[DueTimer]]:
    """Of the due timers of each (ticket, metric, cycle), the latest fires and the lower
    ones are skipped (after downtime only the highest overdue threshold is sent)."""
    groups: dict[tuple[str, str, int], list[DueTimer]] = {}
    for timer in due:
        groups.setdefault(timer.group, []).append(timer)
    fire: list[DueTimer] = []
    skip: list[DueTimer] = []
    for timers in groups.values():
        ordered = sorted(timers, key=lambda t: (t.due_at, t.id))
        fire.append(ordered[-1])
        skip.extend(ordered[:-1])
    return fire, skip


def hold_until(now: datetime, during: BusinessCalendar | None) -> datetime:
    """When a notification may go out: now, or the next opening of its `during` calendar."""
    if during is None or during.is_open(now):
        return now
    return during.next_open(now)


def business_remaining_s(now: datetime, breach_at: datetime, calendar: BusinessCalendar) -> float:
    """Business seconds left until the breach; negative once breached."""
    if now <= breach_at:
        return calendar.elapsed(now, breach_at).total_seconds()
    return -calendar.elapsed(breach_at, now).total_seconds()


def metric_status_at(now: datetime, breach_at: datetime) -> str:
    return "active" if now <= breach_at else "breached"


def severity(threshold: str) -> str:
    """PagerDuty severity: warnings before the breach, critical from the breach on."""
    fraction = None
    if threshold.endswith("%"):
        fraction = float(threshold[:-1]) / 100
    if threshold.startswith(REPEAT_PREFIX) or (fraction is not None and fraction >= 1):
        return "critical"
    return "warning"


def targets_from_json(items: Sequence[JsonObject]) -> tuple[Target, ...]:
    return tuple(Target(str(i["to"]), i.get("during")) for i in items)
