"""PURE: attainment numbers of one SLA metric, and its rows as CSV.

From a metric's rows (one per ticket: its current cycle of `first_response`, `next_response`
or `resolution`) and an instant `now`:

- within target: the share of decided tickets whose metric stopped by `target_at` (for first
  response, the seed's internal goal, "more often than not within an hour"). Decided:
  stopped, or not stopped and already past `target_at`. Policies without a target do not
  count here.
- within breach: the share of decided tickets whose metric stopped by `breach_at` (the SLA
  itself). Decided: stopped, or past `breach_at` without a stop (a running metric past its
  deadline is breached).
- median and p90 business time to the metric's stop, in seconds, over stopped rows.
- breaches per ISO week (of `breach_at`, in UTC), and counts.

Rows still inside their budget are reported as `open`, not counted either way. The plot is in
`report_plot.py` (it needs matplotlib, the `plot` extra).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from sla_engine.core.policies import Policy
from sla_engine.json_types import JsonObject

REPORT_METRICS = ("first_response", "next_response", "resolution")
RUNNING = ("active", "paused")
CSV_COLUMNS = (
    "ticket_id",
    "policy",
    "metric",
    "cycle",
    "calendar",
    "status",
    "started_at",
    "stopped_at",
    "target_at",
    "breach_at",
    "business_elapsed_s",
)


@dataclass(frozen=True)
class MetricRow:
    """A ticket's metric as stored (status as of its last write), with its business time
    elapsed as of the report's `now` for a running metric."""

    started_at: datetime | None
    target_at: datetime | None
    breach_at: datetime | None
    stopped_at: datetime | None
    status: str
    business_elapsed_s: float
    ticket_id: str = ""
    policy: str = ""
    metric: str = "first_response"
    cycle: int = 1
    calendar: str = ""


@dataclass(frozen=True)
class Share:
    """`achieved` of `decided`; `share` is None when nothing is decided yet."""

    achieved: int
    decided: int

    @property
    def share(self) -> float | None:
        return self.achieved / self.decided if self.decided else None

    def to_json(self) -> JsonObject:
        return {"achieved": self.achieved, "decided": self.decided, "share": self.share}


@dataclass(frozen=True)
class Attainment:
    count: int
    answered: int
    open: int
    cancelled: int
    within_target: Share
    within_breach: Share
    median_response_s: float | None
    p90_response_s: float | None
    breaches_per_week: dict[str, int] = field(default_factory=dict)

    @property
    def breaches(self) -> int:
        return self.within_breach.decided - self.within_breach.achieved

    def to_json(self) -> JsonObject:
        return {
            "count": self.count,
            "answered": self.answered,
            "open": self.open,
            "cancelled": self.cancelled,
            "breaches": self.breaches,
            "within_target": self.within_target.to_json(),
            "within_breach": self.within_breach.to_json(),
            "median_response_s": self.median_response_s,
            "p90_response_s": self.p90_response_s,
            "breaches_per_week": dict(self.breaches_per_week),
        }


def stopped(row: MetricRow) -> bool:
    """The metric stopped (answered, solved) on time or late; cancelled ones do not count."""
    return row.stopped_at is not None and row.status in ("achieved", "breached")


def breached(row: MetricRow, now: datetime) -> bool:
    """Stopped after its deadline, or running past it at `now`."""
    if row.status == "breached":
        return True
    return row.status in RUNNING and row.breach_at is not None and now > row.breach_at


def status_at(row: MetricRow, now: datetime) -> str:
    """The row's status at `now`: a running active metric past `breach_at` is breached."""
    if row.status == "active" and breached(row, now):
        return "breached"
    return row.status


def _target_outcome(row: MetricRow, now: datetime) -> bool | None:
    """True: stopped by target_at; False: missed; None: no target or not decided yet."""
    if row.target_at is None or row.status == "cancelled":
        return None
    if stopped(row):
        assert row.stopped_at is not None
        return row.stopped_at <= row.target_at
    if now > row.target_at or breached(row, now):
        return False
    return None


def iso_week(instant: datetime) -> str:
    year, week, _ = instant.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, as numpy's default); None when empty."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def attainment(rows: Iterable[MetricRow], now: datetime) -> Attainment:
    """Attainment of one metric over `rows`, judged at `now`."""
    rows = list(rows)
    active = [r for r in rows if r.status != "cancelled"]
    breach_hits = breach_decided = target_hits = target_decided = 0
    stop_times: list[float] = []
    weeks: Counter[str] = Counter()
    for row in active:
        if stopped(row):
            stop_times.append(float(row.business_elapsed_s))
        if breached(row, now):
            breach_decided += 1
            if row.breach_at is not None:
                weeks[iso_week(row.breach_at)] += 1
        elif stopped(row):
            breach_decided += 1
            breach_hits += 1
        outcome = _target_outcome(row, now)
        if outcome is not None:
            target_decided += 1
            target_hits += int(outcome)
    return Attainment(
        count=len(rows),
        answered=len(stop_times),
        open=len(active) - breach_decided,
        cancelled=len(rows) - len(active),
        within_target=Share(target_hits, target_decided),
        within_breach=Share(breach_hits, breach_decided),
        median_response_s=percentile(stop_times, 50),
        p90_response_s=percentile(stop_times, 90),
        breaches_per_week=dict(sorted(weeks.items())),
    )


def policy_limits(
    policies: Mapping[str, Policy], metric: str, names: Iterable[str]
) -> tuple[float | None, float | None]:
    """(target_s, breach_s) of `metric` when every row is of one policy that has it, else
    (None, None): the lines of one policy drawn over another's tickets would mislead."""
    distinct = set(names)
    if len(distinct) != 1:
        return None, None
    policy = policies.get(distinct.pop())
    rules = None if policy is None else policy.metrics.get(metric)
    if rules is None:
        return None, None
    target = None if rules.target is None else rules.target.total_seconds()
    return target, rules.breach.total_seconds()


def to_csv(rows: Iterable[MetricRow], now: datetime) -> str:
    """One line per ticket metric under a header (`CSV_COLUMNS`); instants in UTC, ISO 8601;
    `status` as at `now`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.ticket_id,
                row.policy,
                row.metric,
                row.cycle,
                row.calendar,
                status_at(row, now),
                _utc(row.started_at),
                _utc(row.stopped_at),
                _utc(row.target_at),
                _utc(row.breach_at),
                repr(float(row.business_elapsed_s)),
            )
        )
    return out.getvalue()


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()
