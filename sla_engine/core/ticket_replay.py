"""A ticket's replay: the ticket-level facts and the clocks of its metrics, event by event.

:func:`sla_engine.core.clock.evaluate` runs a whole log through a fresh replay. A replay can
also be saved (:meth:`TicketReplay.dump`, plain JSON) after the events so far and resumed
later (:meth:`TicketReplay.load`) to apply the next ones: applying events one at a time to a
resumed replay is the same computation as replaying them all, so the answers are equal.
:meth:`TicketReplay.state` evaluates at an instant without changing the replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

from sla_engine.core.business_calendar import BusinessCalendar, CalendarLookup
from sla_engine.core.clock_values import Event, TicketState, TicketStatus
from sla_engine.core.metric_clock import MetricClock, optional_instant, optional_us
from sla_engine.core.policies import Policy
from sla_engine.core.times import instant_us
from sla_engine.errors import InputError

CalendarLoader = CalendarLookup
"""A calendar by name (e.g. `load_calendar`)."""


def policies_fingerprint(policies: Mapping[str, Policy]) -> str:
    """A digest of everything in ``policies`` the clock reads: a saved replay made under
    other policies (a changed config file) is not resumed."""
    parts = []
    for name in sorted(policies):
        policy = policies[name]
        parts.append(f"{name}|{policy.calendar_after_first_response}")
        for metric in sorted(policy.metrics):
            mp = policy.metrics[metric]
            parts.append(
                f"  {metric}|{mp.calendar}|{mp.breach}|{mp.target}|{mp.retarget}|"
                f"{mp.pausable}|{mp.fixed_calendar}"
            )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def memoized(loader: CalendarLoader) -> CalendarLoader:
    cache: dict[str, BusinessCalendar] = {}

    def load(name: str) -> BusinessCalendar:
        if name not in cache:
            cache[name] = loader(name)
        return cache[name]

    return load


@dataclass
class TicketReplay:
    """The ticket-level facts of a replay and the clocks of its metrics.

    ``ticket_calendar`` is the ticket's own calendar in force (None: the policy's calendars):
    it replaces the calendar of every metric whose policy does not set ``fixed_calendar``.
    Instants travel as pairs: the datetime (kept for the answers) and its microseconds since
    the epoch (what the clocks compute and compare with).
    """

    policies: Mapping[str, Policy]
    policy: Policy
    calendars: CalendarLoader
    created_at: datetime
    ticket_calendar: str | None = None
    status: TicketStatus = "open"
    first_response_at: datetime | None = None
    unanswered_since: datetime | None = None
    clocks: dict[str, MetricClock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.created_us = instant_us(self.created_at)

    @classmethod
    def begin(
        cls,
        initial_policy: str,
        created_at: datetime,
        policies: Mapping[str, Policy],
        calendars: CalendarLoader,
        ticket_calendar: str | None = None,
    ) -> TicketReplay:
        """A new ticket's replay: its clocks started at creation, no event applied yet."""
        if initial_policy not in policies:
            raise InputError(
                f"policy {initial_policy!r} is not configured "
                f"(known: {', '.join(sorted(policies))})",
                field="policy",
                value=initial_policy,
            )
        replay = cls(
            policies=policies,
            policy=policies[initial_policy],
            calendars=memoized(calendars),
            created_at=created_at,
            ticket_calendar=ticket_calendar,
        )
        replay.start("first_response", created_at, replay.created_us)
        replay.start("resolution", created_at, replay.created_us)
        return replay

    # -- saving and resuming ------------------------------------------------------------------

    def dump(self) -> dict[str, object]:
        """The replay as JSON (what :meth:`load` resumes)."""
        return {
            "policy": self.policy.name,
            "calendar": self.ticket_calendar,
            "status": self.status,
            "first_response_at": optional_us(self.first_response_at),
            "unanswered_since": optional_us(self.unanswered_since),
            "clocks": {name: clock.dump() for name, clock in self.clocks.items()},
        }

    @classmethod
    def load(
        cls,
        saved: Mapping[str, Any],
        created_at: datetime,
        policies: Mapping[str, Policy],
        calendars: CalendarLoader,
    ) -> TicketReplay:
        """The replay :meth:`dump` saved. KeyError when a policy or metric it names is gone
        (the caller replays the whole log instead)."""
        loader = memoized(calendars)
        return cls(
            policies=policies,
            policy=policies[saved["policy"]],
            calendars=loader,
            created_at=created_at,
            ticket_calendar=saved["calendar"],
            status=cast(TicketStatus, saved["status"]),
            first_response_at=optional_instant(saved["first_response_at"]),
            unanswered_since=optional_instant(saved["unanswered_since"]),
            clocks={
                name: MetricClock.load(name, clock, policies, loader)
                for name, clock in saved["clocks"].items()
            },
        )

    # -- evaluating -----------------------------------------------------------------------------

    def state(self, ticket_id: str, at: datetime) -> TicketState:
        """The ticket's state at ``at`` after the events applied so far (the replay itself is
        left as it was, so more events can follow)."""
        at_us = instant_us(at)
        until = at_us if at_us > self.created_us else self.created_us
        snapshots = {}
        for name, clock in self.clocks.items():
            if clock.stopped_us is None:
                clock = clock.copy()
                clock.advance(until)
            snapshots[name] = clock.snapshot(at, at_us)
        return TicketState(
            ticket_id=ticket_id,
            policy=self.policy.name,
            metrics=MappingProxyType(snapshots),
            status=self.status,
            first_response_at=self.first_response_at,
            calendar=self.ticket_calendar,
        )

    # -- metric lifecycle ---------------------------------------------------------------------

    def calendar_name(self, metric: str) -> str:
        if self.ticket_calendar is not None and not self.policy.metrics[metric].fixed_calendar:
            return self.ticket_calendar
        return self.policy.calendar_for(metric, self.first_response_at is not None)

    def start(self, metric: str, t: datetime, us: int) -> None:
        policy = self.policy.metrics.get(metric)
        if policy is None:
            return
        previous = self.clocks.get(metric)
        if previous is not None and previous.running:
            return
        name = self.calendar_name(metric)
        clock = MetricClock(
            metric=metric,
            cycle=previous.cycle + 1 if previous else 1,
            policy_name=self.policy.name,
            policy=policy,
            calendar_name=name,
            cal=self.calendars(name),
            origin=t,
            origin_us=us,
            started_at=t,
            started_us=us,
            seg_start=t,
            seg_us=us,
        )
        if self.status == "pending" and policy.pausable:
            clock.pause(us)
        self.clocks[metric] = clock

    def running(self, metric: str) -> MetricClock | None:
        clock = self.clocks.get(metric)
        return clock if clock is not None and clock.running else None

    def stop(self, metric: str, t: datetime, us: int) -> None:
        clock = self.clocks.get(metric)
        if clock is not None:
            clock.stop(t, us)

    def should_run(self, metric: str) -> bool:
        if self.status not in ("open", "pending"):
            return False
        if metric == "first_response":
            return self.first_response_at is None
        if metric == "next_response":
            return self.unanswered_since is not None
        return True

    def pause_all(self, us: int) -> None:
        for clock in self.clocks.values():
            if clock.running and clock.policy.pausable:
                clock.pause(us)

    def resume_all(self, us: int) -> None:
        for clock in self.clocks.values():
            clock.resume(us)

    def follow_calendars(self, t: datetime, us: int) -> None:
        """Run each running metric on the calendar it should use now; spent stays spent."""
        for metric, clock in self.clocks.items():
            if clock.running and metric in self.policy.metrics:
                name = self.calendar_name(metric)
                if name != clock.calendar_name:
                    clock.switch_calendar(t, us, name, self.calendars(name))

    def first_response(self, t: datetime, us: int) -> None:
        """Record the first response and move the other metrics to the after-calendar."""
        if self.first_response_at is not None:
            return
        self.first_response_at = t
        self.follow_calendars(t, us)

    def change_policy(self, name: object, u: datetime, us: int) -> None:
        new = self.policies.get(name) if isinstance(name, str) else None
        if new is None or new.name == self.policy.name:
            return
        self.policy = new
        for metric, clock in self.clocks.items():
            if not clock.running:
                continue
            if metric not in new.metrics:
                clock.stop(u, us, cancel=True)
                continue
            calendar = self.calendar_name(metric)
            clock.retarget(u, us, new.name, new.metrics[metric], calendar, self.calendars(calendar))
            if self.status == "pending" and clock.policy.pausable:
                clock.pause(us)
            elif not clock.policy.pausable:
                clock.resume(us)
        for metric in new.metrics:
            if self.running(metric) is None and self.should_run(metric):
                self.start(metric, u, us)

    def change_calendar(self, name: object, u: datetime, us: int) -> None:
        """The ticket moves to calendar ``name`` (None: back to the policy's calendars)."""
        if name is not None and not isinstance(name, str):
            return
        if name == self.ticket_calendar:
            return
        self.ticket_calendar = name
        self.follow_calendars(u, us)

    # -- events -------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply the next event in replay order (one dated before creation counts then)."""
        self.step(event.type, event.occurred_at, event.data)

    def step(self, kind: str, occurred_at: datetime, data: object) -> None:
        """`apply` of an event given by its fields (``data``: its JSON object)."""
        if self.status == "closed":
            return
        us = instant_us(occurred_at)
        if us < self.created_us:
            occurred_at, us = self.created_at, self.created_us
        for clock in self.clocks.values():
            if clock.stopped_us is None:
                clock.advance(us)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, data, occurred_at, us)

    def on_agent_reply(self, data: object, t: datetime, us: int) -> None:
        self.stop("first_response", t, us)
        self.stop("next_response", t, us)
        self.unanswered_since = None
        self.first_response(t, us)

    def on_customer_reply(self, data: object, t: datetime, us: int) -> None:
        if self.status == "solved":
            return
        if self.status == "pending":
            self.status = "open"
            self.resume_all(us)
        if self.first_response_at is not None and self.unanswered_since is None:
            self.unanswered_since = t
            self.start("next_response", t, us)

    def on_pending(self, data: object, t: datetime, us: int) -> None:
        if self.status == "open":
            self.status = "pending"
            self.pause_all(us)

    def on_open(self, data: object, t: datetime, us: int) -> None:
        if self.status == "pending":
            self.status = "open"
            self.resume_all(us)

    def on_solved(self, data: object, t: datetime, us: int) -> None:
        if self.status not in ("open", "pending"):
            return
        self.finish(t, us)
        self.status = "solved"

    def on_closed(self, data: object, t: datetime, us: int) -> None:
        self.finish(t, us)
        self.status = "closed"

    def finish(self, t: datetime, us: int) -> None:
        for clock in self.clocks.values():
            clock.stop(t, us)
        self.unanswered_since = None
        self.first_response(t, us)

    def on_reopened(self, data: object, t: datetime, us: int) -> None:
        if self.status != "solved":
            return
        self.status = "open"
        self.start("resolution", t, us)

    def on_policy_changed(self, data: object, t: datetime, us: int) -> None:
        self.change_policy(_field(data, "policy"), t, us)

    def on_not_an_emergency(self, data: object, t: datetime, us: int) -> None:
        self.change_policy("standard", t, us)

    def on_calendar_changed(self, data: object, t: datetime, us: int) -> None:
        self.change_calendar(_field(data, "calendar"), t, us)


def _field(data: object, name: str) -> object:
    """``data[name]`` of an event's data (None when absent or the data is no object)."""
    return data.get(name) if isinstance(data, Mapping) else None


_HANDLERS: dict[str, Callable[[TicketReplay, object, datetime, int], None]] = {
    "agent_reply": TicketReplay.on_agent_reply,
    "customer_reply": TicketReplay.on_customer_reply,
    "pending": TicketReplay.on_pending,
    "open": TicketReplay.on_open,
    "solved": TicketReplay.on_solved,
    "closed": TicketReplay.on_closed,
    "reopened": TicketReplay.on_reopened,
    "policy_changed": TicketReplay.on_policy_changed,
    "not_an_emergency": TicketReplay.on_not_an_emergency,
    "calendar_changed": TicketReplay.on_calendar_changed,
}
"""Event types the clock uses; others (``created``, credit and RSAA events) do not move it."""
