"""The SLA clock: a ticket's SLA state as a pure function of its event log.

No I/O and no clock reads: the caller passes the policies, the events and the instant ``at``.
Calendars are looked up through the injected ``calendars`` callable. The replay itself lives in
:mod:`sla_engine.core.ticket_replay`, one metric's budget in :mod:`sla_engine.core.metric_clock`.

Choices where the semantics leave room (also in the README):

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
- **The ticket's calendar.** A ticket created with a ``calendar`` runs every metric whose
  policy does not set ``fixed_calendar`` on that calendar (it also takes the place of
  ``calendar_after_first_response``). ``calendar_changed`` ``{calendar}`` at u moves those
  running metrics to the new calendar from u (spent stays spent, as above), and metrics
  started later use it; ``{"calendar": null}`` gives the policy's calendars back.
- **Reported values.** ``business_elapsed_s`` is the business time spent against the breach
  budget (pauses excluded); ``business_remaining_s = breach - elapsed`` (negative once
  breached); ``calendar_remaining_s`` is real time from ``at`` to ``breach_at`` (for a stopped
  metric: from the stop). A running metric past ``breach_at`` reports ``breached`` and keeps
  ``running = True`` for escalations. Instants are reported in the metric calendar's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import attrgetter

from sla_engine.core.business_calendar import BusinessCalendar
from sla_engine.core.clock_values import (
    ZERO,
    Event,
    MetricState,
    Status,
    TicketState,
    TicketStatus,
    require_aware,
)
from sla_engine.core.policies import Policy
from sla_engine.core.ticket_replay import CalendarLoader, TicketReplay

__all__ = [
    "REPLY_METRICS",
    "ZERO",
    "CalendarLoader",
    "Event",
    "MetricState",
    "Status",
    "TicketReplay",
    "TicketState",
    "TicketStatus",
    "evaluate",
    "replay_order",
]

REPLY_METRICS = ("first_response", "next_response")


def replay_order(events: Iterable[Event], at: datetime | None = None) -> list[Event]:
    """The events that count, in replay order: first arrival of each event_id, occurred by
    ``at``, sorted by ``(occurred_at, seq)``."""
    first: dict[str, Event] = {}
    for event in sorted(events, key=_SEQ):
        first.setdefault(event.event_id, event)
    kept = (
        list(first.values()) if at is None else [e for e in first.values() if e.occurred_at <= at]
    )
    kept.sort(key=_REPLAY_KEY)
    return kept


_SEQ = attrgetter("seq")
_REPLAY_KEY = attrgetter("occurred_at", "seq")


def _default_loader(name: str) -> BusinessCalendar:
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
    ticket_calendar: str | None = None,
) -> TicketState:
    """The ticket's SLA state at ``at`` from its creation and event log (pure).

    ``ticket_calendar`` is the calendar the ticket was created with (None: the policy's)."""
    require_aware(created_at, "created_at")
    require_aware(at, "at")
    log = list(events)
    for event in log:
        require_aware(event.occurred_at, f"occurred_at of event {event.event_id!r}")
    ordered = replay_order(log, at)
    replay = TicketReplay.begin(initial_policy, created_at, policies, calendars, ticket_calendar)
    for event in ordered:
        replay.apply(event)
    return replay.state(ticket_id, at)
