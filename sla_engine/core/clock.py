"""The SLA clock: a ticket's SLA state as a pure function of its event log (SPEC section 2).

No I/O and no clock reads: the caller passes the policies, the events and the instant ``at``.
Calendars are looked up through the injected ``calendars`` callable.

Choices where the SPEC is silent (also in the README):

- **Historical view.** Only events with ``occurred_at <= at`` count, so ``?at=`` in the past
  shows the state as it was then. Events are replayed in ``(occurred_at, seq)`` order; a repeated
  ``event_id`` counts once (its first arrival). Events dated before ``created_at`` count at
  ``created_at``. An explicit ``created`` event is a no-op (creation is implicit).
- **Metrics.** ``first_response`` and ``resolution`` start at creation (when the policy has
  them). An ``agent_reply`` stops ``first_response`` and the running ``next_response`` cycle. A
  ``customer_reply`` after the first response starts a ``next_response`` cycle at the oldest
  unanswered customer reply (later replies do not restart it).
- **Pending.** ``pending`` pauses pausable metrics (see :mod:`sla_engine.core.policies`); ``open``,
  ``reopened`` and a ``customer_reply`` (the customer answered) resume them. Paused business
  time moves ``breach_at`` and ``target_at`` later. A pause that begins after the breach does
  not undo it: ``breach_at`` stays where the breach happened.
- **Solved / closed.** ``solved`` stops ``resolution`` and also fulfils the reply metrics still
  running (the solve is the agent's answer): each is achieved when on time, breached otherwise,
  so solving late never hides a breach. ``solved`` also counts as the first response for
  ``calendar_after_first_response``. ``closed`` stops whatever still runs the same way, and is
  final: later events are ignored. ``reopened`` (after ``solved``) starts a new resolution cycle.
- **Policy change.** ``policy_changed`` (and ``not_an_emergency``, which changes to
  ``standard``) re-targets the running metrics with the *new* metric policy's ``retarget`` mode:
  ``from_change`` starts a new clock at the change, ``from_start`` re-counts from the cycle's
  original start (it may breach at once). Pause time already accrued is kept in both modes
  (``breach_at = calendar.add(start, breach + paused)``). Metrics the new policy lacks are
  cancelled; metrics it has that should be running (no first response yet; an unanswered
  customer reply; an unsolved ticket) start at the change. A change to the current policy or
  to an unknown one is ignored (the service refuses unknown names when the event is posted).
  Re-targeting keeps the cycle number, so escalation identities stay stable.
- **Calendar after the first response.** Once the first response happened, a policy's other
  metrics run on ``calendar_after_first_response``: business time already spent stays spent;
  the rest runs on the new calendar from that instant.
- **Reported values.** ``business_elapsed_s`` is the business time spent against the breach
  budget (pauses excluded); ``business_remaining_s = breach - elapsed`` (negative once
  breached); ``calendar_remaining_s`` is real time from ``at`` to ``breach_at`` (for a stopped
  metric: from the stop). A running metric past ``breach_at`` reports ``breached`` and keeps
  ``running = True`` for escalations. Instants are reported in the metric calendar's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from sla_engine.core.policies import MetricPolicy, Policy
from sla_engine.errors import InputError

Status = Literal["active", "paused", "achieved", "breached", "cancelled"]
TicketStatus = Literal["open", "pending", "solved", "closed"]
CalendarLoader = Callable[[str], Any]

ZERO = timedelta(0)
REPLY_METRICS = ("first_response", "next_response")


@dataclass(frozen=True)
class Event:
    """One entry of a ticket's log. ``seq`` is the arrival order (breaks ties)."""

    event_id: str
    type: str
    occurred_at: datetime
    seq: int = 0
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricState:
    """A metric's current cycle, evaluated at an instant."""

    metric: str
    status: Status
    cycle: int
    calendar: str
    started_at: datetime
    target_at: datetime | None
    breach_at: datetime
    stopped_at: datetime | None
    business_elapsed_s: float
    business_remaining_s: float
    calendar_remaining_s: float
    breach: timedelta
    target: timedelta | None = None
    running: bool = False
    paused: bool = False
    clock_start: datetime | None = None
    budget_offset: timedelta = ZERO

    def when_spent(self, spent: timedelta, calendar: Any) -> datetime:
        """When this metric's spent business time reaches ``spent`` if it runs on unpaused
        from now (e.g. the 75% escalation: ``when_spent(0.75 * breach, cal)``).
        ``calendar`` is this metric's calendar. A point already passed before the current
        clock began answers the clock's start."""
        start = self.clock_start or self.started_at
        budget = spent - self.budget_offset
        if budget < ZERO:
            return start
        result: datetime = calendar.add(start, budget)
        return result

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        """The SPEC shape; ``details`` adds cycle, calendar, durations and flags."""
        body: dict[str, Any] = {
            "status": self.status,
            "started_at": _iso(self.started_at),
            "target_at": _iso(self.target_at),
            "breach_at": _iso(self.breach_at),
            "stopped_at": _iso(self.stopped_at),
            "business_elapsed_s": float(self.business_elapsed_s),
            "business_remaining_s": float(self.business_remaining_s),
            "calendar_remaining_s": float(self.calendar_remaining_s),
        }
        if details:
            body.update(
                cycle=self.cycle,
                calendar=self.calendar,
                breach_s=self.breach.total_seconds(),
                target_s=None if self.target is None else self.target.total_seconds(),
                running=self.running,
                paused=self.paused,
            )
        return body


@dataclass(frozen=True)
class TicketState:
    """A ticket's SLA state at an instant: the policy in force and each metric's last cycle."""

    ticket_id: str
    policy: str
    metrics: Mapping[str, MetricState]
    status: TicketStatus = "open"
    first_response_at: datetime | None = None

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "policy": self.policy,
            "metrics": {name: m.to_json(details=details) for name, m in self.metrics.items()},
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _require_aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


# ---------------------------------------------------------------------------------------------
# One metric cycle's clock (mutable, private to a replay)


@dataclass
class _MetricClock:
    """Budget accounting of one metric cycle, possibly over several calendar segments.

    Spent business time at t: ``spent_before + cal.elapsed(seg_start, t) - paused(t)``, where
    ``spent_before`` is what earlier segments spent (negative: credit for pauses accrued before
    a re-target). Breach and target instants freeze once passed while running.
    """

    metric: str
    cycle: int
    policy: MetricPolicy
    calendar_name: str
    cal: Any
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
        spent: timedelta = self.spent_before + self.cal.elapsed(self.seg_start, t)
        return spent - self.paused_now(t)

    def deadline(self, budget: timedelta, t: datetime) -> datetime | None:
        """When ``budget`` is spent if the clock runs unpaused from t (None: before this
        segment)."""
        rest = budget - self.spent_before + self.paused_now(max(t, self.seg_start))
        if rest < ZERO:
            return None
        result: datetime = self.cal.add(self.seg_start, rest)
        return result

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
            accrued: timedelta = self.cal.elapsed(self.pause_from, t)
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

    def switch_calendar(self, t: datetime, name: str, cal: Any) -> None:
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

    def retarget(self, u: datetime, policy: MetricPolicy, name: str, cal: Any) -> None:
        """Measure against ``policy`` from u: a new clock at u (``from_change``) or from the
        cycle's original start (``from_start``); accrued pause time is kept as credit."""
        paused = self.pause_from is not None
        self.resume(u)
        start = u if policy.retarget == "from_change" else self.origin
        self.policy = policy
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


# ---------------------------------------------------------------------------------------------
# Replaying a ticket's log


@dataclass
class _Replay:
    """The ticket-level facts of a replay and the clocks of its metrics."""

    policies: Mapping[str, Policy]
    policy: Policy
    calendars: CalendarLoader
    status: TicketStatus = "open"
    first_response_at: datetime | None = None
    unanswered_since: datetime | None = None
    clocks: dict[str, _MetricClock] = field(default_factory=dict)

    # -- metric lifecycle ---------------------------------------------------------------------

    def calendar_name(self, metric: str) -> str:
        return self.policy.calendar_for(metric, self.first_response_at is not None)

    def start(self, metric: str, t: datetime) -> None:
        if metric not in self.policy.metrics:
            return
        previous = self.clocks.get(metric)
        if previous is not None and previous.running:
            return
        name = self.calendar_name(metric)
        clock = _MetricClock(
            metric=metric,
            cycle=previous.cycle + 1 if previous else 1,
            policy=self.policy.metrics[metric],
            calendar_name=name,
            cal=self.calendars(name),
            origin=t,
            started_at=t,
            seg_start=t,
        )
        if self.status == "pending" and clock.policy.pausable:
            clock.pause(t)
        self.clocks[metric] = clock

    def running(self, metric: str) -> _MetricClock | None:
        clock = self.clocks.get(metric)
        return clock if clock is not None and clock.running else None

    def stop(self, metric: str, t: datetime, *, cancel: bool = False) -> None:
        clock = self.running(metric)
        if clock is not None:
            clock.stop(t, cancel=cancel)

    def should_run(self, metric: str) -> bool:
        if self.status not in ("open", "pending"):
            return False
        if metric == "first_response":
            return self.first_response_at is None
        if metric == "next_response":
            return self.unanswered_since is not None
        return True

    def pause_all(self, t: datetime) -> None:
        for clock in self.clocks.values():
            if clock.running and clock.policy.pausable:
                clock.pause(t)

    def resume_all(self, t: datetime) -> None:
        for clock in self.clocks.values():
            clock.resume(t)

    def first_response(self, t: datetime) -> None:
        """Record the first response and move the other metrics to the after-calendar."""
        if self.first_response_at is not None:
            return
        self.first_response_at = t
        for metric, clock in self.clocks.items():
            if metric != "first_response" and clock.running:
                name = self.calendar_name(metric)
                clock.switch_calendar(t, name, self.calendars(name))

    def change_policy(self, name: Any, u: datetime) -> None:
        new = self.policies.get(name) if isinstance(name, str) else None
        if new is None or new.name == self.policy.name:
            return
        self.policy = new
        for metric, clock in self.clocks.items():
            if not clock.running:
                continue
            if metric not in new.metrics:
                clock.stop(u, cancel=True)
                continue
            calendar = self.calendar_name(metric)
            clock.retarget(u, new.metrics[metric], calendar, self.calendars(calendar))
            if self.status == "pending" and clock.policy.pausable:
                clock.pause(u)
            elif not clock.policy.pausable:
                clock.resume(u)
        for metric in new.metrics:
            if self.running(metric) is None and self.should_run(metric):
                self.start(metric, u)

    # -- events -------------------------------------------------------------------------------

    def apply(self, event: Event, t: datetime) -> None:
        if self.status == "closed":
            return
        for clock in self.clocks.values():
            clock.advance(t)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, t)

    def on_agent_reply(self, event: Event, t: datetime) -> None:
        self.stop("first_response", t)
        self.stop("next_response", t)
        self.unanswered_since = None
        self.first_response(t)

    def on_customer_reply(self, event: Event, t: datetime) -> None:
        if self.status == "solved":
            return
        if self.status == "pending":
            self.status = "open"
            self.resume_all(t)
        if self.first_response_at is not None and self.unanswered_since is None:
            self.unanswered_since = t
            self.start("next_response", t)

    def on_pending(self, event: Event, t: datetime) -> None:
        if self.status == "open":
            self.status = "pending"
            self.pause_all(t)

    def on_open(self, event: Event, t: datetime) -> None:
        if self.status == "pending":
            self.status = "open"
            self.resume_all(t)

    def on_solved(self, event: Event, t: datetime) -> None:
        if self.status not in ("open", "pending"):
            return
        self.finish(t)
        self.status = "solved"

    def on_closed(self, event: Event, t: datetime) -> None:
        self.finish(t)
        self.status = "closed"

    def finish(self, t: datetime) -> None:
        for metric in list(self.clocks):
            self.stop(metric, t)
        self.unanswered_since = None
        self.first_response(t)

    def on_reopened(self, event: Event, t: datetime) -> None:
        if self.status != "solved":
            return
        self.status = "open"
        self.start("resolution", t)

    def on_policy_changed(self, event: Event, t: datetime) -> None:
        data = event.data if isinstance(event.data, Mapping) else {}
        self.change_policy(data.get("policy"), t)

    def on_not_an_emergency(self, event: Event, t: datetime) -> None:
        self.change_policy("standard", t)


_HANDLERS: dict[str, Callable[[_Replay, Event, datetime], None]] = {
    "agent_reply": _Replay.on_agent_reply,
    "customer_reply": _Replay.on_customer_reply,
    "pending": _Replay.on_pending,
    "open": _Replay.on_open,
    "solved": _Replay.on_solved,
    "closed": _Replay.on_closed,
    "reopened": _Replay.on_reopened,
    "policy_changed": _Replay.on_policy_changed,
    "not_an_emergency": _Replay.on_not_an_emergency,
}
"""Event types the clock uses; others (``created``, credit and RSAA events) do not move it."""


def replay_order(events: Iterable[Event], at: datetime | None = None) -> list[Event]:
    """The events that count, in replay order: first arrival of each event_id, occurred by
    ``at``, sorted by ``(occurred_at, seq)``."""
    first: dict[str, Event] = {}
    for event in sorted(events, key=lambda e: e.seq):
        first.setdefault(event.event_id, event)
    kept = [e for e in first.values() if at is None or e.occurred_at <= at]
    return sorted(kept, key=lambda e: (e.occurred_at, e.seq))


def _cached(loader: CalendarLoader) -> CalendarLoader:
    cache: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name not in cache:
            cache[name] = loader(name)
        return cache[name]

    return load


def _default_loader(name: str) -> Any:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


def evaluate(
    ticket_id: str,
    initial_policy: str,
    created_at: datetime,
    events: Iterable[Event],
    policies: Mapping[str, Policy],
    at: datetime,
    *,
    calendars: CalendarLoader = _default_loader,
) -> TicketState:
    """The ticket's SLA state at ``at`` from its creation and event log (pure)."""
    _require_aware(created_at, "created_at")
    _require_aware(at, "at")
    log = list(events)
    for event in log:
        _require_aware(event.occurred_at, f"occurred_at of event {event.event_id!r}")
    ordered = replay_order(log, at)
    if initial_policy not in policies:
        raise InputError(
            f"policy {initial_policy!r} is not configured (known: {', '.join(sorted(policies))})",
            field="policy",
            value=initial_policy,
        )
    replay = _Replay(
        policies=policies, policy=policies[initial_policy], calendars=_cached(calendars)
    )
    replay.start("first_response", created_at)
    replay.start("resolution", created_at)
    for event in ordered:
        replay.apply(event, max(event.occurred_at, created_at))
    for clock in replay.clocks.values():
        clock.advance(max(at, created_at))
    return TicketState(
        ticket_id=ticket_id,
        policy=replay.policy.name,
        metrics=MappingProxyType(
            {name: clock.snapshot(at) for name, clock in replay.clocks.items()}
        ),
        status=replay.status,
        first_response_at=replay.first_response_at,
    )
