"""One metric cycle's clock: the budget accounting a ticket's replay keeps per metric.

Mutable and private to a replay (:mod:`sla_engine.core.ticket_replay`). Its fields are plain
instants and durations, so it can be saved as JSON and resumed exactly (:meth:`dump`,
:meth:`load`): instants as UTC microseconds, durations as microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.clock_values import ZERO, MetricState, Status
from sla_engine.core.policy_values import MetricPolicy, Policy
from sla_engine.core.times import ONE_US, from_epoch_us, instant_us


def optional_us(value: datetime | None) -> int | None:
    """An optional aware instant as microseconds since the epoch (exact)."""
    return None if value is None else instant_us(value)


def optional_instant(value: int | None) -> datetime | None:
    """The UTC instant `optional_us` saved (None stays None)."""
    return None if value is None else from_epoch_us(value)


@dataclass
class MetricClock:
    """Budget accounting of one metric cycle, possibly over several calendar segments.

    Spent business time at t: ``spent_before + cal.elapsed(seg_start, t) - paused(t)``, where
    ``spent_before`` is what earlier segments spent (negative: credit for pauses accrued before
    a re-target). Breach and target instants freeze once passed while running.
    """

    metric: str
    cycle: int
    policy_name: str
    policy: MetricPolicy
    calendar_name: str
    cal: BusinessCalendar
    origin: datetime
    started_at: datetime
    seg_start: datetime
    spent_before: timedelta = ZERO
    paused_seg: timedelta = ZERO
    paused_total: timedelta = ZERO
    pause_from: datetime | None = None
    breached_at: datetime | None = None
    target_passed_at: datetime | None = None
    stopped_at: datetime | None = None
    outcome: Status | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def paused_now(self, t: datetime) -> timedelta:
        if self.pause_from is None or t <= self.pause_from:
            return self.paused_seg
        return self.paused_seg + self.cal.elapsed(self.pause_from, t)

    def spent(self, t: datetime) -> timedelta:
        t = max(t, self.seg_start)
        return self.spent_before + self.cal.elapsed(self.seg_start, t) - self.paused_now(t)

    def deadline(self, budget: timedelta, t: datetime) -> datetime | None:
        """When ``budget`` is spent if the clock runs unpaused from t (None: before this
        segment)."""
        rest = budget - self.spent_before + self.paused_now(max(t, self.seg_start))
        if rest < ZERO:
            return None
        return self.cal.add(self.seg_start, rest)

    def breach_at(self, t: datetime) -> datetime:
        return self.breached_at or self.deadline(self.policy.breach, t) or self.seg_start

    def target_at(self, t: datetime) -> datetime | None:
        if self.policy.target is None:
            return None
        return self.target_passed_at or self.deadline(self.policy.target, t) or self.seg_start

    def advance(self, t: datetime) -> None:
        """Freeze breach and target instants that lie before t."""
        if not self.running:
            return
        if self.breached_at is None:
            breach_at = self.breach_at(t)
            if breach_at < t:
                self.breached_at = breach_at
        if self.policy.target is not None and self.target_passed_at is None:
            target_at = self.target_at(t)
            if target_at is not None and target_at < t:
                self.target_passed_at = target_at

    def pause(self, t: datetime) -> None:
        if self.running and self.pause_from is None:
            self.pause_from = t

    def resume(self, t: datetime) -> None:
        if self.pause_from is None:
            return
        if t > self.pause_from:
            accrued = self.cal.elapsed(self.pause_from, t)
            self.paused_seg += accrued
            self.paused_total += accrued
        self.pause_from = None

    def stop(self, t: datetime, *, cancel: bool = False) -> None:
        """Stop at t: achieved when t <= breach_at, breached otherwise, or cancelled."""
        if not self.running:
            return
        self.advance(t)
        on_time = self.breached_at is None and t <= self.breach_at(t)
        self.resume(t)
        self.stopped_at = t
        self.outcome = "cancelled" if cancel else ("achieved" if on_time else "breached")

    def switch_calendar(self, t: datetime, name: str, cal: BusinessCalendar) -> None:
        """Run the rest of the budget on another calendar from t; what is spent stays spent."""
        if not self.running or name == self.calendar_name:
            return
        paused = self.pause_from is not None
        spent = self.spent(t)
        self.resume(t)
        self.spent_before = spent
        self.seg_start = t
        self.paused_seg = ZERO
        self.calendar_name, self.cal = name, cal
        if paused:
            self.pause_from = t

    def retarget(
        self, u: datetime, policy_name: str, policy: MetricPolicy, name: str, cal: BusinessCalendar
    ) -> None:
        """Measure against ``policy`` from u: a new clock at u (``from_change``) or from the
        cycle's original start (``from_start``); accrued pause time is kept as credit."""
        paused = self.pause_from is not None
        self.resume(u)
        start = u if policy.retarget == "from_change" else self.origin
        self.policy_name, self.policy = policy_name, policy
        self.calendar_name, self.cal = name, cal
        self.started_at = self.seg_start = start
        self.spent_before = -self.paused_total
        self.paused_seg = ZERO
        self.breached_at = self.target_passed_at = None
        if paused:
            self.pause_from = u
        self.advance(u)

    def snapshot(self, at: datetime) -> MetricState:
        end = self.stopped_at if self.stopped_at is not None else at
        breach_at = self.breach_at(end)
        target_at = self.target_at(end)
        spent = self.spent(end)
        status: Status
        if self.outcome is not None:
            status = self.outcome
        elif self.breached_at is not None or at > breach_at:
            status = "breached"
        elif self.pause_from is not None:
            status = "paused"
        else:
            status = "active"
        tz = getattr(self.cal, "tz", None)

        def local(value: datetime) -> datetime:
            return value.astimezone(tz) if tz is not None else value

        return MetricState(
            metric=self.metric,
            status=status,
            cycle=self.cycle,
            calendar=self.calendar_name,
            started_at=local(self.started_at),
            target_at=None if target_at is None else local(target_at),
            breach_at=local(breach_at),
            stopped_at=None if self.stopped_at is None else local(self.stopped_at),
            business_elapsed_s=spent.total_seconds(),
            business_remaining_s=(self.policy.breach - spent).total_seconds(),
            calendar_remaining_s=(breach_at - end).total_seconds(),
            breach=self.policy.breach,
            target=self.policy.target,
            running=self.running,
            paused=self.running and self.pause_from is not None,
            clock_start=local(self.seg_start),
            budget_offset=self.spent_before - self.paused_now(max(end, self.seg_start)),
        )

    def copy(self) -> MetricClock:
        return replace(self)

    def dump(self) -> list[int | str | None]:
        """The clock as a JSON list (the calendar object itself is looked up again on load)."""
        return [
            self.cycle,
            self.policy_name,
            self.calendar_name,
            instant_us(self.origin),
            instant_us(self.started_at),
            instant_us(self.seg_start),
            self.spent_before // ONE_US,
            self.paused_seg // ONE_US,
            self.paused_total // ONE_US,
            optional_us(self.pause_from),
            optional_us(self.breached_at),
            optional_us(self.target_passed_at),
            optional_us(self.stopped_at),
            self.outcome,
        ]

    @classmethod
    def load(
        cls,
        metric: str,
        saved: list[Any],
        policies: Mapping[str, Policy],
        calendars: CalendarLookup,
    ) -> MetricClock:
        """The clock :meth:`dump` saved; KeyError when its policy or metric is gone."""
        (
            cycle,
            policy_name,
            calendar_name,
            origin,
            started,
            seg_start,
            spent,
            paused_seg,
            paused_total,
            pause_from,
            breached,
            target_passed,
            stopped,
            outcome,
        ) = saved
        return cls(
            metric=metric,
            cycle=cycle,
            policy_name=policy_name,
            policy=policies[policy_name].metrics[metric],
            calendar_name=calendar_name,
            cal=calendars(calendar_name),
            origin=from_epoch_us(origin),
            started_at=from_epoch_us(started),
            seg_start=from_epoch_us(seg_start),
            spent_before=timedelta(microseconds=spent),
            paused_seg=timedelta(microseconds=paused_seg),
            paused_total=timedelta(microseconds=paused_total),
            pause_from=optional_instant(pause_from),
            breached_at=optional_instant(breached),
            target_passed_at=optional_instant(target_passed),
            stopped_at=optional_instant(stopped),
            outcome=cast(Status | None, outcome),
        )
