"""SLA policies: which metrics a ticket is measured on, on which calendar, with which deadlines.

A policy gives each metric (``first_response``, ``next_response``, ``resolution``) a calendar,
a breach duration, an optional earlier target, a re-target mode, whether it pauses and
escalation rules. The built-in defaults reproduce the vendor's support policy; a service
config file merges into them metric by metric (:func:`parse_policies`).

The parts live in their own modules and are importable from here:

- ``policy_values.py``: ``Policy``, ``MetricPolicy``, ``METRICS``, ``default_policies`` (and
  why ``pausable`` defaults differ per metric);
- ``escalation_rules.py``: ``EscalationRule``, ``RepeatRule``, ``parse_threshold``;
- ``policy_parser.py``: ``parse_policies`` (the config file's ``[policies]`` table).
"""

from __future__ import annotations

from sla_engine.core.escalation_rules import EscalationRule, RepeatRule, parse_threshold
from sla_engine.core.policy_parser import parse_policies
from sla_engine.core.policy_values import (
    DEFAULT_PAUSABLE,
    METRICS,
    RETARGET_MODES,
    MetricPolicy,
    Policy,
    Retarget,
    default_policies,
)

__all__ = (
    "DEFAULT_PAUSABLE",
    "METRICS",
    "RETARGET_MODES",
    "EscalationRule",
    "MetricPolicy",
    "Policy",
    "RepeatRule",
    "Retarget",
    "default_policies",
    "parse_policies",
    "parse_threshold",
)
