"""`Policy` and `MetricPolicy`: which metrics a ticket is measured on, on which calendar, with
which deadlines; and the built-in policies (docs/REFERENCE.md, The built-in policies).

Pausing (``pending``, waiting on the customer) is a per-metric property, ``pausable``:

- ``resolution`` and ``next_response`` pause by default: while the ticket waits on the
  customer, the agent cannot make progress, so the clock should not run (zendesk's "requester
  wait time" behaves the same way).
- ``first_response`` does not pause by default: the first reply is owed as soon as the ticket
  arrives; putting a ticket on hold without answering it must not stretch the promise (zendesk's
  "first reply time" does not pause either).

Any metric may set ``pausable = true|false`` in the config file to choose otherwise.

A ticket may have its own calendar (a team's hours, docs/CALENDARS.md): it replaces the calendar
of each metric but those that set ``fixed_calendar = true`` (default false; true for the
built-in emergency ``first_response``, whose promise is 24x7 whoever handles the ticket).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal

from sla_engine.core.escalation_rules import EscalationRule, RepeatRule

METRICS: tuple[str, ...] = ("first_response", "next_response", "resolution")
RETARGET_MODES: tuple[str, ...] = ("from_change", "from_start")
DEFAULT_PAUSABLE: Mapping[str, bool] = MappingProxyType(
    {"first_response": False, "next_response": True, "resolution": True}
)

Retarget = Literal["from_change", "from_start"]


@dataclass(frozen=True)
class MetricPolicy:
    """One metric of a policy: its calendar, deadlines (business time) and escalations.

    ``fixed_calendar``: the metric keeps this calendar on a ticket that has its own calendar
    (the emergency first response stays 24x7)."""

    metric: str
    calendar: str
    breach: timedelta
    target: timedelta | None = None
    retarget: Retarget = "from_change"
    escalate: tuple[EscalationRule, ...] = ()
    repeat_after_breach: RepeatRule | None = None
    pausable: bool = False
    fixed_calendar: bool = False


@dataclass(frozen=True)
class Policy:
    """A named set of metric policies. ``calendar_after_first_response``: once the first
    response happened, the ticket's other metrics run on that calendar (emergency tickets)."""

    name: str
    metrics: Mapping[str, MetricPolicy] = field(default_factory=dict)
    calendar_after_first_response: str | None = None

    def calendar_for(self, metric: str, first_response_done: bool) -> str:
        """The calendar a metric runs on, given whether the first response has happened."""
        after = self.calendar_after_first_response
        if metric != "first_response" and first_response_done and after:
            return after
        return self.metrics[metric].calendar


def default_policies() -> dict[str, Policy]:
    """The seed policy: ``standard`` email tickets (first response 4 business hours, internal
    goal 1 hour) and ``emergency`` 24x7 tickets (first response 1 hour, then business hours).
    Built-ins have no escalations: destinations only exist in a config file."""
    return {
        "standard": Policy(
            name="standard",
            metrics=MappingProxyType(
                {
                    "first_response": MetricPolicy(
                        metric="first_response",
                        calendar="smartertools",
                        breach=timedelta(hours=4),
                        target=timedelta(hours=1),
                    ),
                }
            ),
        ),
        "emergency": Policy(
            name="emergency",
            metrics=MappingProxyType(
                {
                    "first_response": MetricPolicy(
                        metric="first_response",
                        calendar="24x7",
                        breach=timedelta(hours=1),
                        fixed_calendar=True,
                    ),
                }
            ),
            calendar_after_first_response="smartertools",
        ),
    }
