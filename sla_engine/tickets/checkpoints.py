"""`ticket_checkpoints`: a ticket's saved clock after every so many events in replay order,
where a late event's replay starts (see `ticket_clock`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Delete, Table, and_, delete, insert, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from sla_engine.storage.bulk_update import one_of
from sla_engine.storage.models import TicketCheckpoint

CHECKPOINTS_TABLE = cast(Table, TicketCheckpoint.__table__)
Position = tuple[datetime, int]
"""A place in replay order: (occurred_at, seq) of an event."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The saved clock (JSON) after the events up to ``position``."""

    position: Position
    state: Mapping[str, Any]


def checkpoint_before(session: Session, ticket_id: str, until: datetime) -> Checkpoint | None:
    """The ticket's last checkpoint whose events all occurred by ``until``."""
    table = CHECKPOINTS_TABLE.c
    row = session.execute(
        select(table.occurred_at, table.seq, table.state)
        .where(table.ticket_id == ticket_id, table.occurred_at <= until)
        .order_by(table.occurred_at.desc(), table.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else Checkpoint((row.occurred_at, row.seq), row.state)


def drop_checkpoints(session: Session, ticket_id: str, after: Position | None) -> None:
    """Forget the ticket's checkpoints after ``after`` in replay order (all without it)."""
    table = CHECKPOINTS_TABLE.c
    query = delete(CHECKPOINTS_TABLE).where(table.ticket_id == ticket_id)
    if after is not None:
        occurred, seq = after
        query = query.where(
            or_(
                table.occurred_at > occurred,
                and_(table.occurred_at == occurred, table.seq > seq),
            )
        )
    session.execute(query)


def drop_all(session: Session, ticket_ids: Collection[str]) -> None:
    """Forget every checkpoint of these tickets (one statement, on the session's connection:
    the ORM's execution of a Core DELETE cost a re-plan batch about 1 ms of CPU)."""
    conn = session.connection()
    conn.execute(_drop_all(conn.dialect), {"ids": list(ticket_ids)})


@lru_cache(maxsize=8)
def _drop_all(dialect: Dialect) -> Delete:
    return delete(CHECKPOINTS_TABLE).where(one_of(CHECKPOINTS_TABLE.c.ticket_id, "ids", dialect))


def add_checkpoints(session: Session, ticket_id: str, checkpoints: Sequence[Checkpoint]) -> None:
    add_many(session, [(ticket_id, c) for c in checkpoints])


def add_many(session: Session, checkpoints: Sequence[tuple[str, Checkpoint]]) -> None:
    """Insert checkpoints of any tickets (one executemany)."""
    if checkpoints:
        session.execute(
            insert(CHECKPOINTS_TABLE),
            [
                {
                    "ticket_id": ticket_id,
                    "occurred_at": c.position[0],
                    "seq": c.position[1],
                    "state": dict(c.state),
                }
                for ticket_id, c in checkpoints
            ],
        )
