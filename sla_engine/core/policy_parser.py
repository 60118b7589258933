"""Reading the ``[policies]`` table of a service config file (docs/REFERENCE.md).

:func:`parse_policies` merges the table into the built-in defaults metric by metric; every
error is a ``ConfigError`` naming the file, the key path and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TypedDict

from sla_engine.core.durations import format_duration, parse_duration
from sla_engine.core.escalation_rules import EscalationRule, RepeatRule, parse_threshold
from sla_engine.core.policy_values import (
    DEFAULT_PAUSABLE,
    METRICS,
    RETARGET_MODES,
    MetricPolicy,
    Policy,
    Retarget,
    default_policies,
)
from sla_engine.core.toml_reader import TableReader, reason
from sla_engine.errors import SlaEngineError

_RULE_KEYS = ("at", "to", "during")
_REPEAT_KEYS = ("every", "to", "during")
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


def parse_policies(
    table: object,
    file: str | Path = "<config>",
    *,
    destinations: Collection[str] = (),
    calendars: Callable[[str], object] | None = None,
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


def _is_calendar_file(name: str) -> bool:
    from sla_engine.core.calendar_folders import find_calendar_file, is_calendar_path

    if is_calendar_path(name):
        return True
    try:
        find_calendar_file(name)
    except SlaEngineError:
        return False
    return True


def _default_calendar_loader(name: str) -> object:
    from sla_engine.core.calendar import load_calendar

    return load_calendar(name)


class _MetricChanges(TypedDict, total=False):
    """The keys of a metric a config file gives (the others are inherited)."""

    calendar: str
    breach: timedelta
    target: timedelta | None
    retarget: Retarget
    escalate: tuple[EscalationRule, ...]
    repeat_after_breach: RepeatRule | None
    pausable: bool
    fixed_calendar: bool


@dataclass
class _PolicyParser(TableReader):
    """Validates one config file's ``[policies]`` table; every error names file, key and value."""

    destinations: Collection[str]
    calendars: Callable[[str], object]
    stored: dict[str, str] | None = None
    """When given, a bare name that is no calendar file is recorded here (name -> key) instead of
    refused: it may be a calendar stored in the service's database, checked at start."""
    _checked_calendars: set[str] = field(default_factory=set)

    def duration(self, key: str, value: object, *, positive: bool = True) -> timedelta:
        if not isinstance(value, str):
            raise self.error(
                key, value, "expected a duration string such as '4h', '90m', '1h30m' or '45s'"
            )
        try:
            parsed = parse_duration(value, key)
        except (SlaEngineError, ValueError) as exc:
            raise self.error(key, value, f"not a duration ({reason(exc)})") from exc
        if positive and parsed <= timedelta(0):
            raise self.error(key, value, "must be longer than 0")
        return parsed

    def calendar(self, key: str, value: object) -> str:
        name = self.string(key, value)
        if name not in self._checked_calendars:
            if self.stored is not None and not _is_calendar_file(name):
                self.stored.setdefault(name, key)
                self._checked_calendars.add(name)
                return name
            try:
                self.calendars(name)
            except (SlaEngineError, OSError, ValueError, LookupError) as exc:
                problem = f"unknown or invalid calendar ({reason(exc)})"
                raise self.error(key, value, problem) from exc
            self._checked_calendars.add(name)
        return name

    def destination(self, key: str, value: object) -> str:
        name = self.string(key, value)
        if name not in self.destinations:
            known = ", ".join(sorted(self.destinations)) or "none configured"
            raise self.error(key, value, f"unknown destination (known: {known})")
        return name

    def retarget(self, key: str, value: object) -> Retarget:
        if value == "from_change" or value == "from_start":
            return value
        raise self.error(key, value, f"expected one of: {', '.join(RETARGET_MODES)}")

    def flag(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, value, "expected true or false")
        return value

    def rule(self, key: str, value: object) -> EscalationRule:
        table = self.keyed_table(key, value, _RULE_KEYS, ("at", "to"))
        at = table["at"]
        try:
            parse_threshold(at)
        except (SlaEngineError, ValueError) as exc:
            raise self.error(f"{key}.at", at, reason(exc)) from exc
        assert isinstance(at, str)
        during = table.get("during")
        return EscalationRule(
            at=at.strip(),
            to=self.destination(f"{key}.to", table["to"]),
            during=None if during is None else self.calendar(f"{key}.during", during),
        )

    def rules(self, key: str, value: object) -> tuple[EscalationRule, ...]:
        if not isinstance(value, list):
            raise self.error(
                key, value, "expected a list of tables such as [{at = '75%', to = 'oncall'}]"
            )
        return tuple(self.rule(f"{key}[{i}]", rule) for i, rule in enumerate(value))

    def repeat(self, key: str, value: object) -> RepeatRule:
        table = self.keyed_table(key, value, _REPEAT_KEYS, ("every", "to"))
        during = table.get("during")
        return RepeatRule(
            every=self.duration(f"{key}.every", table["every"]),
            to=self.destination(f"{key}.to", table["to"]),
            during=None if during is None else self.calendar(f"{key}.during", during),
        )

    def metric(self, key: str, name: str, value: object, base: MetricPolicy | None) -> MetricPolicy:
        table = self.table(key, value)
        self.unknown_keys(key, table, _METRIC_KEYS)
        changes = self.metric_changes(key, table)
        if base is None:
            base = self.new_metric(key, name, table, changes)
        merged = replace(base, **changes)
        self.check_metric(key, merged)
        return merged

    def metric_changes(self, key: str, table: Mapping[str, object]) -> _MetricChanges:
        """The metric's keys given in ``table``, each read and checked; ``false`` removes an
        optional one (target, repeat_after_breach)."""
        changes: _MetricChanges = {}
        if "calendar" in table:
            changes["calendar"] = self.calendar(f"{key}.calendar", table["calendar"])
        if "breach" in table:
            changes["breach"] = self.duration(f"{key}.breach", table["breach"])
        if "target" in table:
            raw = table["target"]
            changes["target"] = None if raw is False else self.duration(f"{key}.target", raw)
        if "retarget" in table:
            changes["retarget"] = self.retarget(f"{key}.retarget", table["retarget"])
        if "pausable" in table:
            changes["pausable"] = self.flag(f"{key}.pausable", table["pausable"])
        if "fixed_calendar" in table:
            changes["fixed_calendar"] = self.flag(f"{key}.fixed_calendar", table["fixed_calendar"])
        if "escalate" in table:
            changes["escalate"] = self.rules(f"{key}.escalate", table["escalate"])
        if "repeat_after_breach" in table:
            raw = table["repeat_after_breach"]
            changes["repeat_after_breach"] = (
                None if raw is False else self.repeat(f"{key}.repeat_after_breach", raw)
            )
        return changes

    def new_metric(
        self, key: str, name: str, table: Mapping[str, object], changes: _MetricChanges
    ) -> MetricPolicy:
        """A metric the policy did not have yet: it needs at least a calendar and a breach."""
        for required in ("calendar", "breach"):
            if required not in changes:
                raise self.error(
                    key,
                    dict(table),
                    f"a new metric needs at least 'calendar' and 'breach' (missing '{required}')",
                )
        return MetricPolicy(
            metric=name,
            calendar=changes["calendar"],
            breach=changes["breach"],
            pausable=DEFAULT_PAUSABLE[name],
        )

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

    def policy(self, name: object, value: object, base: Policy | None) -> Policy:
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
