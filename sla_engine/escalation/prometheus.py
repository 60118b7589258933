"""Prometheus counters of the escalation scheduler (default registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DUE = Counter("sla_engine_escalations_due", "Escalation timers that came due and fired")
SKIPPED = Counter(
    "sla_engine_escalations_skipped", "Lower overdue thresholds skipped after downtime"
)
SENT = Counter("sla_engine_escalations_sent", "Notifications delivered", ["destination"])
RETRIED = Counter(
    "sla_engine_escalations_retried", "Delivery attempts scheduled for retry", ["destination"]
)
DEAD = Counter(
    "sla_engine_escalations_dead", "Notifications moved to the dead-letter state", ["destination"]
)
LAG = Histogram(
    "sla_engine_escalation_lag_seconds",
    "Delay from an escalation's due time to its successful delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 3600.0),
)
