"""`GET /v1/policies` and `GET /v1/policies/{name}`: the policies in force.

As merged from the built-in defaults and the service's config file: durations as policy
strings (`"4h"`, `"1h30m"`), calendars and destinations by name, every setting of each metric
(its escalation rules included), so what a client sees is what the clock uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from sla_engine.api.deps import ServicesDep
from sla_engine.core.durations import format_duration
from sla_engine.core.policies import Policy
from sla_engine.errors import NotFound
from sla_engine.json_types import JsonObject

router = APIRouter(tags=["policies"])


class EscalationRuleView(BaseModel):
    at: str = Field(examples=["75%", "-15m"])
    to: str
    during: str | None = None


class RepeatRuleView(BaseModel):
    every: str = Field(examples=["1h"])
    to: str
    during: str | None = None


class MetricPolicyView(BaseModel):
    model_config = {"extra": "allow"}

    metric: str
    calendar: str
    breach: str = Field(examples=["4h"])
    target: str | None = Field(examples=["1h"])
    retarget: str
    pausable: bool
    escalate: list[EscalationRuleView]
    repeat_after_breach: RepeatRuleView | None


class PolicyView(BaseModel):
    model_config = {"extra": "allow"}

    name: str
    calendar_after_first_response: str | None
    metrics: dict[str, MetricPolicyView]


class PolicyList(BaseModel):
    policies: list[PolicyView]


def policy_view(policy: Policy) -> JsonObject:
    """A policy as JSON: every dataclass field, durations as policy strings."""
    return dict(_plain(policy))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@router.get("/policies", response_model=PolicyList)
def list_policies(services: ServicesDep) -> JsonObject:
    """Every policy in force, by name."""
    policies = services.config.policies
    return {"policies": [policy_view(policies[name]) for name in sorted(policies)]}


@router.get("/policies/{name}", response_model=PolicyView)
def get_policy(services: ServicesDep, name: str) -> JsonObject:
    """One policy in force."""
    policies = services.config.policies
    if name not in policies:
        known = ", ".join(sorted(policies))
        raise NotFound(f"no policy {name!r} (configured: {known})", field="name", value=name)
    return policy_view(policies[name])
