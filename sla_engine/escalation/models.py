"""Escalation tables: timers (when to fire), deliveries (the outbox) and destination state.

The database owns timing: a timer row is the only record that an escalation is due, written
in the same transaction as the ticket change that plans it, and firing it writes one
delivery row per destination in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sla_engine.storage.models import Base
from sla_engine.storage.types import UTCDateTime

TIMER_STATUSES = ("pending", "fired", "skipped", "cancelled")
DELIVERY_STATUSES = ("queued", "sending", "sent", "dead", "cancelled")


class EscalationTimer(Base):
    """One threshold of one metric cycle of one ticket; `generation` grows on every move so a
    firing that read an older version changes nothing."""

    __tablename__ = "escalation_timers"
    __table_args__ = (
        UniqueConstraint(
            "ticket_id", "metric", "cycle", "threshold", name="uq_escalation_timers_key"
        ),
        Index("ix_escalation_timers_status_due", "status", "due_at"),
        Index("ix_escalation_timers_ticket", "ticket_id", "metric"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(64))
    cycle: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(100))
    calendar: Mapped[str] = mapped_column(String(200))
    breach_at: Mapped[datetime] = mapped_column(UTCDateTime)
    targets: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EscalationDelivery(Base):
    """The outbox: one notification to one destination. `id` is the `webhook-id`, stable
    across retries and replays; a lease (`lease_owner`, `lease_until`) marks the worker
    sending it, and only that lease may complete it."""

    __tablename__ = "escalation_deliveries"
    __table_args__ = (
        Index("ix_escalation_deliveries_status_next", "status", "not_before"),
        Index("ix_escalation_deliveries_ticket", "ticket_id", "metric", "cycle"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    timer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(64))
    cycle: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DestinationState(Base):
    """A destination the engine stopped sending to (HTTP 410 Gone)."""

    __tablename__ = "escalation_destinations"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    disabled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
