"""Ticket tables: the ticket, its append-only event log, and its metrics' current cycle.

Other packages (escalation, credits) declare their tables on the same `Base` in their own
`models.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

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
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from sla_engine.storage.types import UTCDateTime

ID_LENGTH = 200
NAME_LENGTH = 100
QUEUE_CALENDARS_LENGTH = 1000
NO_BREACH = datetime(9999, 12, 31, tzinfo=UTC)
"""`tickets.queue_breach_at` of a ticket with nothing running: after every real instant."""
PAUSED = datetime(9999, 12, 30, tzinfo=UTC)
"""`tickets.queue_breach_at` of a ticket whose running metrics are all paused: it cannot
breach before one resumes, so it comes after every running clock."""

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
    type_annotation_map: ClassVar[dict[object, TypeEngine[Any]]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Ticket(Base):
    """A helpdesk ticket as the engine knows it.

    `queue_breach_at` is the earliest `breach_at` among its running metrics whose clock runs
    (not paused), `PAUSED` when all of them are paused, `NO_BREACH` when none runs (so those
    sort last with one plain index on every database); `stopped_late` says a metric stopped
    after its deadline. The ticket is breached at `now` when `queue_breach_at < now` or
    `stopped_late`. The queue (`ticket_queue`) pages through the indexes below.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index(None, "status", "queue_breach_at", "id"),
        Index(None, "status", "current_policy", "queue_breach_at", "id"),
        Index(None, "status", "stopped_late", "queue_breach_at", "id"),
        Index(None, "status", "created_at", "id"),
    )

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
    # The queue's keys (`ticket_queue`), written in each ticket write by its hook.
    queue_breach_at: Mapped[datetime] = mapped_column(default=NO_BREACH)
    stopped_late: Mapped[bool] = mapped_column(default=False)
    # the calendars of its `ticket_queue_calendars` rows, one a line (what they were written
    # from: a write compares instead of reading them back)
    queue_calendars: Mapped[str] = mapped_column(String(QUEUE_CALENDARS_LENGTH), default="")
    # The ticket's own calendar (docs/CALENDARS.md): as created (None: the policy's calendars),
    # and the one in force as of the last write (what the queue shows and filters on).
    initial_calendar: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    calendar: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # The clock's saved replay state after the whole log (`tickets.saved_clock`); None until
    # the first write after migration 0005, which replays the log once.
    clock_state: Mapped[dict[str, Any] | None]


class TicketEvent(Base):
    """One client-posted event; `seq` is the arrival order, used to break `occurred_at` ties."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        UniqueConstraint("ticket_id", "event_id"),
        # A late event's replay reads the events after a checkpoint in replay order.
        Index(None, "ticket_id", "occurred_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class TicketCheckpoint(Base):
    """The clock's replay state after the ticket's events up to (`occurred_at`, `seq`) in
    replay order, saved every so many events: a late event replays from the last one before
    it instead of from the start."""

    __tablename__ = "ticket_checkpoints"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]]


CLOCK_RUNS = "stopped_at IS NULL AND status <> 'paused'"
CLOCK_PAUSED = "stopped_at IS NULL AND status = 'paused'"


class TicketMetric(Base):
    """The current cycle of one SLA metric of a ticket, as of its last write.

    Kept for queries across tickets (what breaches next, reports); the authoritative state
    is always re-evaluated from the event log.
    """

    __tablename__ = "ticket_metrics"
    __table_args__ = (
        Index(None, "status", "breach_at"),
        Index(None, "calendar", "ticket_id"),  # calendar re-planning walks these
        # the queue's `metric=` filter: running metrics of one kind, by breach_at while their
        # clock runs, by ticket while paused
        Index(
            None,
            "metric",
            "breach_at",
            "ticket_id",
            sqlite_where=text(CLOCK_RUNS),
            postgresql_where=text(CLOCK_RUNS),
        ),
        Index(
            None,
            "metric",
            "ticket_id",
            sqlite_where=text(CLOCK_PAUSED),
            postgresql_where=text(CLOCK_PAUSED),
        ),
    )

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


class TicketQueueCalendar(Base):
    """A calendar in which one of the ticket's running metrics accrues, with the ticket's
    queue keys: the queue's `calendar=` filter walks these (one or two rows a ticket, only
    while something runs, so only while it is open or pending). Written by the queue's
    ticket hook."""

    __tablename__ = "ticket_queue_calendars"
    __table_args__ = (
        Index("ix_ticket_queue_calendars_by_breach", "calendar", "queue_breach_at", "ticket_id"),
        Index("ix_ticket_queue_calendars_by_created", "calendar", "created_at", "ticket_id"),
    )

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    calendar: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    queue_breach_at: Mapped[datetime]
    created_at: Mapped[datetime]


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
