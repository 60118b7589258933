"""One metric cycle's clock: the budget accounting a ticket's replay keeps per metric.

Mutable and private to a replay (:mod:`sla_engine.core.ticket_replay`). It computes in
integer microseconds (instants since the epoch, durations), exactly, on the calendar's
timeline; the instants it reports are the datetimes the calendar and the events gave, so the
answers are those of datetime arithmetic. Saved as JSON and resumed exactly (:meth:`dump`,
:meth:`load`): instants as UTC microseconds, durations as microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.calendar import Calendar
from sla_engine.core.clock_values import MetricState, Status, metric_state
from sla_engine.core.policy_values import MetricPolicy, Policy
from sla_engine.core.times import ONE_US, from_epoch_us, instant_us

Arithmetic = tuple[
    Callable[[int, int], int], Callable[[int, int], int], Callable[[int], datetime] | None
]
"""A calendar's ``add(start, duration)`` and ``elapsed(a, b)`` in microseconds, and the
datetime its ``add`` answers for an instant in microseconds (None: call ``add`` itself)."""


def optional_us(value: datetime | None) -> int | None:
    """An optional aware instant as microseconds since the epoch (exact)."""
    return None if value is None else instant_us(value)


def optional_instant(value: int | None) -> datetime | None:
    """The UTC instant `optional_us` saved (None stays None)."""
    return None if value is None else from_epoch_us(value)


def arithmetic(cal: BusinessCalendar) -> Arithmetic:
    """``cal``'s business arithmetic in microseconds: a `Calendar`'s own timeline and its
    conversion of the timeline's answers (what its datetime methods compute with, so the
    results are theirs), else through the datetime methods of the protocol."""
    if isinstance(cal, Calendar):
        return cal.timeline.add, cal.timeline.elapsed, cal._datetime

    def add(start: int, duration: int) -> int:
        return instant_us(cal.add(from_epoch_us(start), timedelta(microseconds=duration)))

    def elapsed(a: int, b: int) -> int:
        return cal.elapsed(from_epoch_us(a), from_epoch_us(b)) // ONE_US

    return add, elapsed, None


def _us(value: timedelta) -> int:
    return value // ONE_US


@dataclass(eq=False)
class MetricClock:
    """Budget accounting of one metric cycle, possibly over several calendar segments.

    Spent business time at t: ``spent_before + elapsed(seg_start, t) - paused(t)``, where
    ``spent_before`` is what earlier segments spent (negative: credit for pauses accrued before
    a re-target). Breach and target instants freeze once passed while running. Fields ending
    in ``_us`` are microseconds; ``seg_us``, ``started_us`` and ``origin_us`` are the
    instants ``seg_start``, ``started_at`` and ``origin`` (kept as given, for the answers).
    """

    metric: str
    cycle: int
    policy_name: str
    policy: MetricPolicy
    calendar_name: str
    cal: BusinessCalendar
    origin: datetime
    origin_us: int
    started_at: datetime
    started_us: int
    seg_start: datetime
    seg_us: int
    spent_before_us: int = 0
    paused_seg_us: int = 0
    paused_total_us: int = 0
    pause_us: int | None = None
    breached_at: datetime | None = None
    breached_us: int | None = None
    target_passed_at: datetime | None = None
    target_passed_us: int | None = None
    stopped_at: datetime | None = None
    stopped_us: int | None = None
    outcome: Status | None = None

    def __post_init__(self) -> None:
        self._use(self.policy, self.cal)

    def _use(self, policy: MetricPolicy, cal: BusinessCalendar) -> None:
        """Measure against ``policy`` on ``cal`` (the cached deadlines are forgotten)."""
        self.policy, self.cal = policy, cal
        self._add, self._elapsed, self._datetime = arithmetic(cal)
        self._breach = _us(policy.breach)
        self._target = None if policy.target is None else _us(policy.target)
        # deadline cache: (rest of the budget, its deadline) of the current segment
        self._memo: dict[int, int] = {}

    @property
    def running(self) -> bool:
        return self.stopped_us is None

    # -- arithmetic in microseconds -------------------------------------------------------

    def paused_now(self, t: int) -> int:
        pause = self.pause_us
        if pause is None or t <= pause:
            return self.paused_seg_us
        return self.paused_seg_us + self._elapsed(pause, t)

    def spent(self, t: int) -> int:
        seg = self.seg_us
        if t < seg:
            t = seg
        return self.spent_before_us + self._elapsed(seg, t) - self.paused_now(t)

    def rest(self, budget: int, t: int) -> int:
        """What is left of ``budget`` at t, counted from this segment's start."""
        seg = self.seg_us
        return budget - self.spent_before_us + self.paused_now(t if t > seg else seg)

    def deadline(self, rest: int) -> int:
        """When ``rest`` (>= 0) of business time from the segment's start is spent."""
        memo = self._memo
        found = memo.get(rest)
        if found is None:
            if len(memo) >= 8:  # a paused clock's rest grows: keep the cache small
                memo.clear()
            found = memo[rest] = self._add(self.seg_us, rest)
        return found

    def breach_us(self, t: int) -> int:
        if self.breached_us is not None:
            return self.breached_us
        rest = self.rest(self._breach, t)
        return self.seg_us if rest < 0 else self.deadline(rest)

    def _instant(self, rest: int) -> datetime:
        """The deadline of ``rest`` as the calendar answers it (or the segment's start)."""
        if rest < 0:
            return self.seg_start
        if self._datetime is not None:
            return self._datetime(self.deadline(rest))
        return self.cal.add(self.seg_start, timedelta(microseconds=rest))

    def target_at(self, t: int) -> datetime | None:
        if self._target is None:
            return None
        if self.target_passed_at is not None:
            return self.target_passed_at
        return self._instant(self.rest(self._target, t))

    # -- the clock's life -----------------------------------------------------------------

    def advance(self, t: int) -> None:
        """Freeze breach and target instants that lie before t."""
        if self.stopped_us is not None:
            return
        if self.breached_us is None:
            rest = self.rest(self._breach, t)
            at = self.seg_us if rest < 0 else self.deadline(rest)
            if at < t:
                self.breached_us, self.breached_at = at, self._instant(rest)
        if self._target is not None and self.target_passed_us is None:
            rest = self.rest(self._target, t)
            at = self.seg_us if rest < 0 else self.deadline(rest)
            if at < t:
                self.target_passed_us, self.target_passed_at = at, self._instant(rest)

    def pause(self, t: int) -> None:
        if self.stopped_us is None and self.pause_us is None:
            self.pause_us = t

    def resume(self, t: int) -> None:
        pause = self.pause_us
        if pause is None:
            return
        if t > pause:
            accrued = self._elapsed(pause, t)
            self.paused_seg_us += accrued
            self.paused_total_us += accrued
        self.pause_us = None

    def stop(self, t: datetime, t_us: int, *, cancel: bool = False) -> None:
        """Stop at t: achieved when t <= breach_at, breached otherwise, or cancelled."""
        if self.stopped_us is not None:
            return
        self.advance(t_us)
        on_time = self.breached_us is None and t_us <= self.breach_us(t_us)
        self.resume(t_us)
        self.stopped_at, self.stopped_us = t, t_us
        self.outcome = "cancelled" if cancel else ("achieved" if on_time else "breached")

    def switch_calendar(self, t: datetime, t_us: int, name: str, cal: BusinessCalendar) -> None:
        """Run the rest of the budget on another calendar from t; what is spent stays spent."""
        if self.stopped_us is not None or name == self.calendar_name:
            return
        paused = self.pause_us is not None
        spent = self.spent(t_us)
        self.resume(t_us)
        self.spent_before_us = spent
        self.seg_start, self.seg_us = t, t_us
        self.paused_seg_us = 0
        self.calendar_name = name
        self._use(self.policy, cal)
        if paused:
            self.pause_us = t_us

    def retarget(
        self,
        u: datetime,
        u_us: int,
        policy_name: str,
        policy: MetricPolicy,
        name: str,
        cal: BusinessCalendar,
    ) -> None:
        """Measure against ``policy`` from u: a new clock at u (``from_change``) or from the
        cycle's original start (``from_start``); accrued pause time is kept as credit."""
        paused = self.pause_us is not None
        self.resume(u_us)
        if policy.retarget == "from_change":
            start, start_us = u, u_us
        else:
            start, start_us = self.origin, self.origin_us
        self.policy_name, self.calendar_name = policy_name, name
        self._use(policy, cal)
        self.started_at = self.seg_start = start
        self.started_us = self.seg_us = start_us
        self.spent_before_us = -self.paused_total_us
        self.paused_seg_us = 0
        self.breached_at = self.target_passed_at = None
        self.breached_us = self.target_passed_us = None
        if paused:
            self.pause_us = u_us
        self.advance(u_us)

    # -- answers ------------------------------------------------------------------------------

    def snapshot(self, at: datetime, at_us: int) -> MetricState:
        """The metric's state at ``at`` (after `advance` to it)."""
        if self.stopped_at is not None and self.stopped_us is not None:
            end, end_us = self.stopped_at, self.stopped_us
        else:
            end, end_us = at, at_us
        seg = self.seg_us
        paused = self.paused_now(end_us if end_us > seg else seg)
        if self.breached_at is not None:
            breach_at, breach_us = self.breached_at, self.breached_us or 0
        else:
            rest = self._breach - self.spent_before_us + paused
            breach_us = seg if rest < 0 else self.deadline(rest)
            breach_at = self._instant(rest)
        target_at = self.target_at(end_us)
        spent = timedelta(microseconds=self.spent(end_us))
        status: Status
        if self.outcome is not None:
            status = self.outcome
        elif self.breached_us is not None or at_us > breach_us:
            status = "breached"
        elif self.pause_us is not None:
            status = "paused"
        else:
            status = "active"
        tz = getattr(self.cal, "tz", None)
        remaining = (breach_at - end).total_seconds()  # before the answer's zone is set
        stopped_at, started_at, clock_start = self.stopped_at, self.started_at, self.seg_start
        if tz is not None:  # answered in the calendar's zone
            breach_at = breach_at.astimezone(tz)
            target_at = None if target_at is None else target_at.astimezone(tz)
            stopped_at = None if stopped_at is None else stopped_at.astimezone(tz)
            started_at, clock_start = started_at.astimezone(tz), clock_start.astimezone(tz)
        running = self.stopped_us is None
        policy = self.policy
        return metric_state(
            metric=self.metric,
            status=status,
            cycle=self.cycle,
            calendar=self.calendar_name,
            started_at=started_at,
            target_at=target_at,
            breach_at=breach_at,
            stopped_at=stopped_at,
            business_elapsed_s=spent.total_seconds(),
            business_remaining_s=(policy.breach - spent).total_seconds(),
            calendar_remaining_s=remaining,
            breach=policy.breach,
            target=policy.target,
            running=running,
            paused=running and self.pause_us is not None,
            clock_start=clock_start,
            budget_offset=timedelta(microseconds=self.spent_before_us - paused),
        )

    def copy(self) -> MetricClock:
        """An independent copy (the deadline cache is shared: its entries stay true)."""
        twin = object.__new__(MetricClock)
        twin.__dict__.update(self.__dict__)
        return twin

    def dump(self) -> list[int | str | None]:
        """The clock as a JSON list (the calendar object itself is looked up again on load)."""
        return [
            self.cycle,
            self.policy_name,
            self.calendar_name,
            self.origin_us,
            self.started_us,
            self.seg_us,
            self.spent_before_us,
            self.paused_seg_us,
            self.paused_total_us,
            self.pause_us,
            self.breached_us,
            self.target_passed_us,
            self.stopped_us,
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
        origin_at = from_epoch_us(origin)  # the three are often one instant: one datetime
        started_at = origin_at if started == origin else from_epoch_us(started)
        seg_at = started_at if seg_start == started else from_epoch_us(seg_start)
        return cls(
            metric=metric,
            cycle=cycle,
            policy_name=policy_name,
            policy=policies[policy_name].metrics[metric],
            calendar_name=calendar_name,
            cal=calendars(calendar_name),
            origin=origin_at,
            origin_us=origin,
            started_at=started_at,
            started_us=started,
            seg_start=seg_at,
            seg_us=seg_start,
            spent_before_us=spent,
            paused_seg_us=paused_seg,
            paused_total_us=paused_total,
            pause_us=pause_from,
            breached_at=optional_instant(breached),
            breached_us=breached,
            target_passed_at=optional_instant(target_passed),
            target_passed_us=target_passed,
            stopped_at=optional_instant(stopped),
            stopped_us=stopped,
            outcome=cast("Status | None", outcome),
        )
