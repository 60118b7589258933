"""Ticket tables: the ticket, its append-only event log, and its metrics' current cycle.

Other packages (escalation, credits) declare their tables on the same `Base` in their own
`models.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sla_engine.storage.types import UTCDateTime

ID_LENGTH = 200
NAME_LENGTH = 100

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every table of the engine."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Ticket(Base):
    """A helpdesk ticket as the engine knows it."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    policy: Mapped[str] = mapped_column(String(NAME_LENGTH))
    current_policy: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime]
    account: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    product: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    version: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    legacy: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime]


class TicketEvent(Base):
    """One client-posted event; `seq` is the arrival order, used to break `occurred_at` ties."""

    __tablename__ = "ticket_events"
    __table_args__ = (UniqueConstraint("ticket_id", "event_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class TicketMetric(Base):
    """The current cycle of one SLA metric of a ticket, as of its last write.

    Kept for queries across tickets (what breaches next, reports); the authoritative state
    is always re-evaluated from the event log.
    """

    __tablename__ = "ticket_metrics"
    __table_args__ = (Index(None, "status", "breach_at"),)

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    cycle: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    policy: Mapped[str] = mapped_column(String(NAME_LENGTH))
    calendar: Mapped[str] = mapped_column(String(NAME_LENGTH))
    started_at: Mapped[datetime | None]
    target_at: Mapped[datetime | None]
    breach_at: Mapped[datetime | None] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None]
    business_elapsed_s: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


def breaching_query(
    start: datetime, end: datetime, statuses: Sequence[str] = ("active",)
) -> Select[tuple[TicketMetric]]:
    """Metrics of the given statuses whose `breach_at` falls in [start, end), soonest first.

    Served by the (status, breach_at) index: one range scan per status.
    """
    return (
        select(TicketMetric)
        .where(
            TicketMetric.status.in_(list(statuses)),
            TicketMetric.breach_at >= start,
            TicketMetric.breach_at < end,
        )
        .order_by(TicketMetric.breach_at)
    )


def breaching_between(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    statuses: Sequence[str] = ("active",),
) -> list[TicketMetric]:
    """What breaches in [start, end): e.g. the running metrics due within the next hour."""
    return list(session.scalars(breaching_query(start, end, statuses)))
