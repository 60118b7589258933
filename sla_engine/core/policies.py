"""SLA policies: which metrics a ticket is measured on, on which calendar, with which deadlines.

A policy gives each metric (``first_response``, ``next_response``, ``resolution``) a calendar,
a breach duration, an optional earlier target, a re-target mode and escalation rules. The
built-in defaults reproduce the seed policy (SPEC section 2); a service config file merges into
them metric by metric (SPEC section 3, :func:`parse_policies`).

Pausing (``pending``, waiting on the customer) is a per-metric property, ``pausable``:

- ``resolution`` and ``next_response`` pause by default: while the ticket waits on the
  customer, the agent cannot make progress, so the clock should not run (zendesk's "requester
  wait time" behaves the same way).
- ``first_response`` does not pause by default: the first reply is owed as soon as the ticket
  arrives; putting a ticket on hold without answering it must not stretch the promise (zendesk's
  "first reply time" does not pause either).

Any metric may set ``pausable = true|false`` in the config file to choose otherwise.

A ticket may have its own calendar (a team's hours, SPEC section 6): it replaces the calendar
of each metric but those that set ``fixed_calendar = true`` (default false; true for the
built-in emergency ``first_response``, whose promise is 24x7 whoever handles the ticket).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from sla_engine.core.durations import format_duration, parse_duration
from sla_engine.core.toml_reader import TableReader
from sla_engine.errors import InputError, SlaEngineError

METRICS: tuple[str, ...] = ("first_response", "next_response", "resolution")
RETARGET_MODES: tuple[str, ...] = ("from_change", "from_start")
DEFAULT_PAUSABLE: Mapping[str, bool] = MappingProxyType(
    {"first_response": False, "next_response": True, "resolution": True}
)

Retarget = Literal["from_change", "from_start"]

_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)%$")


def parse_threshold(text: str) -> tuple[float | None, timedelta | None]:
    """Split an escalation ``at`` into (fraction, offset): ``"75%"`` -> (0.75, None),
    ``"-15m"`` -> (None, 15 minutes before breach). Raises ``ValueError`` with the reason."""
    if not isinstance(text, str):
        raise ValueError("expected a string such as '75%' or '-15m'")
    text = text.strip()
    match = _FRACTION.match(text)
    if match:
        try:
            percent = Decimal(match.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise ValueError("not a percentage") from exc
        if not Decimal(0) < percent <= Decimal(100):
            raise ValueError("a percentage must be above 0% and at most 100%")
        return float(percent / 100), None
    if text.startswith("-"):
        offset = parse_duration(text[1:], "at")
        if offset <= timedelta(0):
            raise ValueError("an offset before breach must be longer than 0")
        return None, offset
    raise ValueError(
        "expected a share of the breach time such as '75%' or an offset before "
        "breach such as '-15m'"
    )


@dataclass(frozen=True)
class EscalationRule:
    """Notify ``to`` when a running metric reaches ``at`` (``"75%"`` of its breach duration in
    business time, or ``"-15m"`` business time before breach); ``during`` holds the
    notification until that calendar is open."""

    at: str
    to: str
    during: str | None = None

    def __post_init__(self) -> None:
        try:
            parse_threshold(self.at)
        except ValueError as exc:
            raise InputError(f"at {self.at!r}: {_reason(exc)}", field="at", value=self.at) from exc

    @property
    def fraction(self) -> float | None:
        return parse_threshold(self.at)[0]

    @property
    def offset(self) -> timedelta | None:
        return parse_threshold(self.at)[1]

    def business_due(self, breach: timedelta) -> timedelta:
        """Business time after the clock's start at which this rule is due, for ``breach``."""
        fraction, offset = parse_threshold(self.at)
        if fraction is not None:
            return breach * fraction
        assert offset is not None
        return max(breach - offset, timedelta(0))


@dataclass(frozen=True)
class RepeatRule:
    """After breach, notify ``to`` again every ``every`` of real time until the metric stops."""

    every: timedelta
    to: str
    during: str | None = None


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


# ---------------------------------------------------------------------------------------------
# Parsing the [policies] table of a config file


_METRIC_KEYS = (
    "calendar",
    "breach",
    "target",
    "retarget",
    "escalate",
    "repeat_after_breach",
    "pausable",
    "fixed_calendar",
)
_RULE_KEYS = ("at", "to", "during")
_REPEAT_KEYS = ("every", "to", "during")


def _is_calendar_file(name: str) -> bool:
    from sla_engine.core.calendar_file import find_calendar_file, is_calendar_path

    if is_calendar_path(name):
        return True
    try:
        find_calendar_file(name)
    except SlaEngineError:
        return False
    return True


def _default_calendar_loader(name: str) -> Any:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


@dataclass
class _PolicyParser(TableReader):
    """Validates one config file's ``[policies]`` table; every error names file, key and value."""

    destinations: Collection[str]
    calendars: Callable[[str], Any]
    stored: dict[str, str] | None = None
    """When given, a bare name that is no calendar file is recorded here (name -> key) instead of
    refused: it may be a calendar stored in the service's database, checked at start."""
    _checked_calendars: set[str] = field(default_factory=set)

    def duration(self, key: str, value: Any, *, positive: bool = True) -> timedelta:
        if not isinstance(value, str):
            raise self.error(
                key, value, "expected a duration string such as '4h', '90m', '1h30m' or '45s'"
            )
        try:
            parsed = parse_duration(value, key)
        except (SlaEngineError, ValueError) as exc:
            raise self.error(key, value, f"not a duration ({_reason(exc)})") from exc
        if positive and parsed <= timedelta(0):
            raise self.error(key, value, "must be longer than 0")
        return parsed

    def calendar(self, key: str, value: Any) -> str:
        name = self.string(key, value)
        if name not in self._checked_calendars:
            if self.stored is not None and not _is_calendar_file(name):
                self.stored.setdefault(name, key)
                self._checked_calendars.add(name)
                return name
            try:
                self.calendars(name)
            except (SlaEngineError, OSError, ValueError, LookupError) as exc:
                reason = f"unknown or invalid calendar ({_reason(exc)})"
                raise self.error(key, value, reason) from exc
            self._checked_calendars.add(name)
        return name

    def destination(self, key: str, value: Any) -> str:
        name = self.string(key, value)
        if name not in self.destinations:
            known = ", ".join(sorted(self.destinations)) or "none configured"
            raise self.error(key, value, f"unknown destination (known: {known})")
        return name

    def rule(self, key: str, value: Any) -> EscalationRule:
        table = self.table(key, value)
        self.unknown_keys(key, table, _RULE_KEYS)
        for required in ("at", "to"):
            if required not in table:
                raise self.error(key, dict(table), f"missing '{required}'")
        at = table["at"]
        try:
            parse_threshold(at)
        except (SlaEngineError, ValueError) as exc:
            raise self.error(f"{key}.at", at, _reason(exc)) from exc
        during = table.get("during")
        return EscalationRule(
            at=at.strip(),
            to=self.destination(f"{key}.to", table["to"]),
            during=None if during is None else self.calendar(f"{key}.during", during),
        )

    def repeat(self, key: str, value: Any) -> RepeatRule:
        table = self.table(key, value)
        self.unknown_keys(key, table, _REPEAT_KEYS)
        for required in ("every", "to"):
            if required not in table:
                raise self.error(key, dict(table), f"missing '{required}'")
        during = table.get("during")
        return RepeatRule(
            every=self.duration(f"{key}.every", table["every"]),
            to=self.destination(f"{key}.to", table["to"]),
            during=None if during is None else self.calendar(f"{key}.during", during),
        )

    def metric(self, key: str, name: str, value: Any, base: MetricPolicy | None) -> MetricPolicy:
        table = self.table(key, value)
        self.unknown_keys(key, table, _METRIC_KEYS)
        changes: dict[str, Any] = {}
        if "calendar" in table:
            changes["calendar"] = self.calendar(f"{key}.calendar", table["calendar"])
        if "breach" in table:
            changes["breach"] = self.duration(f"{key}.breach", table["breach"])
        if "target" in table:
            raw = table["target"]
            changes["target"] = None if raw is False else self.duration(f"{key}.target", raw)
        if "retarget" in table:
            mode = table["retarget"]
            if mode not in RETARGET_MODES:
                raise self.error(
                    f"{key}.retarget", mode, f"expected one of: {', '.join(RETARGET_MODES)}"
                )
            changes["retarget"] = mode
        for flag in ("pausable", "fixed_calendar"):
            if flag in table:
                if not isinstance(table[flag], bool):
                    raise self.error(f"{key}.{flag}", table[flag], "expected true or false")
                changes[flag] = table[flag]
        if "escalate" in table:
            rules = table["escalate"]
            if not isinstance(rules, list):
                raise self.error(
                    f"{key}.escalate",
                    rules,
                    "expected a list of tables such as [{at = '75%', to = 'oncall'}]",
                )
            changes["escalate"] = tuple(
                self.rule(f"{key}.escalate[{i}]", rule) for i, rule in enumerate(rules)
            )
        if "repeat_after_breach" in table:
            raw = table["repeat_after_breach"]
            changes["repeat_after_breach"] = (
                None if raw is False else self.repeat(f"{key}.repeat_after_breach", raw)
            )
        if base is None:
            for required in ("calendar", "breach"):
                if required not in changes:
                    raise self.error(
                        key,
                        dict(table),
                        f"a new metric needs at least 'calendar' and 'breach' "
                        f"(missing '{required}')",
                    )
            base = MetricPolicy(
                metric=name,
                calendar=changes["calendar"],
                breach=changes["breach"],
                pausable=DEFAULT_PAUSABLE[name],
            )
        merged = replace(base, **changes)
        self.check_metric(key, merged)
        return merged

    def check_metric(self, key: str, metric: MetricPolicy) -> None:
        """Cross-field rules, checked after merging so an override cannot break them."""
        if metric.target is not None and metric.target > metric.breach:
            breach = format_duration(metric.breach)
            raise self.error(
                f"{key}.target",
                format_duration(metric.target),
                f"the target must not be later than the breach ({breach})",
            )
        seen: set[tuple[str, str]] = set()
        for i, rule in enumerate(metric.escalate):
            offset = rule.offset
            if offset is not None and offset >= metric.breach:
                raise self.error(
                    f"{key}.escalate[{i}].at",
                    rule.at,
                    f"the offset must be shorter than the breach "
                    f"({format_duration(metric.breach)})",
                )
            if (rule.at, rule.to) in seen:
                raise self.error(
                    f"{key}.escalate[{i}]", rule.at, f"a second rule at {rule.at!r} to {rule.to!r}"
                )
            seen.add((rule.at, rule.to))

    def policy(self, name: Any, value: Any, base: Policy | None) -> Policy:
        key = f"policies.{name}"
        if (
            not isinstance(name, str)
            or not name.strip()
            or name != name.strip()
            or any(not ch.isprintable() for ch in name)
        ):
            raise self.error(key, name, "a policy name must be a non-empty printable string")
        table = self.table(key, value)
        self.unknown_keys(key, table, (*METRICS, "calendar_after_first_response"))
        metrics = dict(base.metrics) if base else {}
        for metric in METRICS:
            if metric in table:
                metrics[metric] = self.metric(
                    f"{key}.{metric}", metric, table[metric], metrics.get(metric)
                )
        after = base.calendar_after_first_response if base else None
        if "calendar_after_first_response" in table:
            raw = table["calendar_after_first_response"]
            after = (
                None if raw is False else self.calendar(f"{key}.calendar_after_first_response", raw)
            )
        if not metrics:
            raise self.error(
                key, dict(table), f"a policy needs at least one metric ({', '.join(METRICS)})"
            )
        return Policy(
            name=name, metrics=MappingProxyType(metrics), calendar_after_first_response=after
        )

    def check_defaults(self, policies: Mapping[str, Policy]) -> None:
        """Built-in policies whose calendars are missing are refused at start too."""
        for policy in policies.values():
            for metric in policy.metrics.values():
                self.calendar(f"policies.{policy.name}.{metric.metric}.calendar", metric.calendar)
            if policy.calendar_after_first_response:
                self.calendar(
                    f"policies.{policy.name}.calendar_after_first_response",
                    policy.calendar_after_first_response,
                )


def parse_policies(
    table: Any,
    file: str | Path = "<config>",
    *,
    destinations: Collection[str] = (),
    calendars: Callable[[str], Any] | None = None,
    base: Mapping[str, Policy] | None = None,
    stored: dict[str, str] | None = None,
) -> dict[str, Policy]:
    """Merge a config file's ``[policies]`` table into ``base`` (the built-in defaults).

    Metric by metric: naming ``[policies.standard.resolution]`` adds that metric and keeps the
    default first_response; naming a key of an existing metric overrides just that key; a new
    policy name creates a policy, whose metrics need at least ``calendar`` and ``breach``.
    ``target = false`` / ``repeat_after_breach = false`` / ``calendar_after_first_response =
    false`` remove an inherited value. Calendars are loaded (an unknown one is refused now, not
    when the first ticket arrives), except that with ``stored`` given, names that are no
    calendar file are collected there (name -> key) for the service to look up among its
    stored calendars; ``to`` must name one of ``destinations``.
    Raises :class:`ConfigError` naming the file, the key path and the value.
    """
    parser = _PolicyParser(
        file=str(file),
        destinations=destinations,
        calendars=calendars or _default_calendar_loader,
        stored=stored,
    )
    policies = dict(default_policies() if base is None else base)
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise parser.error("policies", table, "expected a table of policies")
    for name, value in table.items():
        policies[name] = parser.policy(name, value, policies.get(name))
    parser.check_defaults(policies)
    return policies


def _reason(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
