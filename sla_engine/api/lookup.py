"""Finding the named things a request refers to: calendars, policies, policy metrics.

Over HTTP a calendar is named, never a file path: a client must not make the service read
arbitrary files. Unknown names are a 422 naming the body field, or a 404 for a path segment.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

from sla_engine.api.problems import invalid
from sla_engine.core.calendar import Calendar, list_calendars, load_calendar
from sla_engine.core.policies import MetricPolicy, Policy
from sla_engine.errors import CalendarError, NotFound

if TYPE_CHECKING:
    from sla_engine.calendar_store import StoredCalendars
    from sla_engine.composition import Services

CALENDAR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
DEFAULT_METRIC = "first_response"
RECENT_S = 1.0
"""How long a looked-up calendar is reused before `load_calendar` checks its file again."""
_recent: dict[tuple[str, str], tuple[float, Calendar]] = {}


def calendar_source(services: Services) -> StoredCalendars | None:
    """The service's calendar source (stored versions and files), if it has one."""
    store = services.calendar_store
    return None if store is None else store.source


def calendar_named(
    name: object,
    field: str,
    *,
    in_path: bool = False,
    source: StoredCalendars | None = None,
) -> Calendar:
    """The calendar called `name` (from `source`, the service's stored calendars, when
    given); a problem naming `field` if there is none."""
    if not isinstance(name, str) or not CALENDAR_NAME.match(name) or name.endswith(".toml"):
        raise _unknown_calendar(name, field, in_path, "is not a calendar name")
    if source is not None:
        if not source.is_known(name):
            known = ", ".join(source.names())
            message = f"no such calendar; known calendars: {known}"
            if in_path:
                raise NotFound(f"calendar {name!r}: {message}", field=field, value=name)
            raise invalid(field, name, message)
        return source.calendar(name)
    now = time.monotonic()
    key = (name, os.environ.get("SLA_ENGINE_CALENDARS", ""))
    recent = _recent.get(key)
    if recent is not None and recent[0] > now:
        return recent[1]
    try:
        calendar = load_calendar(name)
    except CalendarError:
        if name in list_calendars():
            raise  # the file exists but is broken: its own error says where
        raise _unknown_calendar(name, field, in_path, "no such calendar") from None
    _recent[key] = (now + RECENT_S, calendar)
    return calendar


def _unknown_calendar(name: object, field: str, in_path: bool, why: str) -> Exception:
    known = ", ".join(sorted(list_calendars()))
    message = f"{why}; known calendars: {known}"
    if in_path:
        return NotFound(f"calendar {name!r}: {message}", field=field, value=name)
    return invalid(field, name, message)


def policy_named(services: Services, name: str, field: str = "policy") -> Policy:
    policies = services.config.policies
    if name not in policies:
        known = ", ".join(sorted(policies))
        raise invalid(field, name, f"no such policy; configured policies: {known}")
    return policies[name]


def metric_policy(services: Services, policy_name: str, metric: str | None) -> MetricPolicy:
    """The `MetricPolicy` of `metric` (default first_response) in policy `policy_name`."""
    policy = policy_named(services, policy_name)
    name = metric or DEFAULT_METRIC
    if name not in policy.metrics:
        known = ", ".join(sorted(policy.metrics))
        raise invalid("metric", name, f"policy {policy_name!r} has no such metric; it has: {known}")
    return policy.metrics[name]
