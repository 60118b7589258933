"""Tunables of the escalation scheduler, with environment overrides for operators and tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from sla_engine.errors import ConfigError

ENV_PREFIX = "SLA_ENGINE_ESCALATION_"


@dataclass(frozen=True)
class EscalationSettings:
    """`poll_s`: the loop wakes at least this often; `lease_s`: how long a claimed delivery
    belongs to its worker before others may reclaim it (longer than `send_timeout_s`);
    `max_attempts`: attempts before the dead-letter state."""

    poll_s: float = 0.25
    lease_s: float = 30.0
    claim_batch: int = 200
    fire_batch: int = 500
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 600.0
    retry_after_cap_s: float = 3600.0
    send_timeout_s: float = 10.0
    concurrency: int = 8
    retention_days: float = 30.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_s)

    @property
    def claim_limit(self) -> int:
        """How many deliveries one claim takes: no more than the parallel senders can finish
        within half a lease even if every send runs into its timeout, so a slow destination
        never lets leases of waiting rows expire (which would make others resend them)."""
        rounds = max(1, int(self.lease_s / 2 // self.send_timeout_s))
        return max(1, min(self.claim_batch, self.concurrency * rounds))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> EscalationSettings:
        """Defaults, then `SLA_ENGINE_ESCALATION_<FIELD>` variables, then `overrides`."""
        values: dict[str, Any] = {}  # each field's own type (int or float): dynamic
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name in env:
                kind = int if f.type in ("int", int) else float
                try:
                    values[f.name] = kind(env[name])
                except ValueError:
                    raise ConfigError(
                        f"{name}: {env[name]!r} is not a number", field=name, value=env[name]
                    ) from None
                if values[f.name] <= 0:
                    raise ConfigError(f"{name}: must be positive", field=name, value=env[name])
        return replace(cls(**values), **overrides)
