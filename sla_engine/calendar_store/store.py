"""The SQL of the calendar store: calendars and versions (re-plan jobs: replan_store.py).

Writers of a calendar's versions lock its `calendars` row (`SELECT ... FOR UPDATE`; SQLite's
`BEGIN IMMEDIATE` serialises writers anyway), so versions are numbered consecutively and the
rules about `effective_from` are checked against the true latest version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from sla_engine.calendar_store.models import CalendarVersion, StoredCalendar
from sla_engine.calendar_store.replan_store import (  # re-plan jobs: there, kept here too
    ReplanJob,
    add_replan,
    replan_jobs,
    unfinished_replans,
)
from sla_engine.json_types import JsonObject


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A stored version as plain values."""

    id: int
    name: str
    version: int
    effective_from: datetime | None
    known_from: datetime | None
    created_at: datetime
    retroactive: bool
    origin: str
    definition: JsonObject


_VERSION_COLUMNS = (
    CalendarVersion.id,
    CalendarVersion.name,
    CalendarVersion.version,
    CalendarVersion.effective_from,
    CalendarVersion.known_from,
    CalendarVersion.created_at,
    CalendarVersion.retroactive,
    CalendarVersion.origin,
    CalendarVersion.definition,
)

# --- calendars and versions --------------------------------------------------------------


def lock_calendar(session: Session, name: str) -> StoredCalendar | None:
    """The calendar's row, locked for this transaction (None when it is not stored)."""
    return session.scalar(
        sa.select(StoredCalendar)
        .where(StoredCalendar.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def add_calendar(session: Session, name: str, now: datetime) -> StoredCalendar:
    """A new calendar row (flushed: a concurrent creator's row makes this an IntegrityError)."""
    row = StoredCalendar(
        name=name, latest_version=0, file_hash=None, created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    return row


def latest_version(session: Session, name: str) -> VersionRow | None:
    row = session.execute(
        sa.select(*_VERSION_COLUMNS)
        .where(CalendarVersion.name == name)
        .order_by(CalendarVersion.version.desc())
        .limit(1)
    ).first()
    return None if row is None else VersionRow(*row)


def append_version(
    session: Session,
    calendar: StoredCalendar,
    *,
    definition: JsonObject,
    effective_from: datetime | None,
    known_from: datetime | None,
    retroactive: bool,
    origin: str,
    now: datetime,
    content_hash: str | None = None,
) -> int:
    """Store the next version of the (locked) calendar; returns its number."""
    number = calendar.latest_version + 1
    session.execute(
        sa.insert(CalendarVersion).values(
            name=calendar.name,
            version=number,
            effective_from=effective_from,
            known_from=known_from,
            created_at=now,
            retroactive=retroactive,
            origin=origin,
            content_hash=content_hash,
            definition=definition,
        )
    )
    calendar.latest_version = number
    calendar.updated_at = now
    if content_hash is not None:
        calendar.file_hash = content_hash
    session.flush()
    return number


def versions_of(session: Session, name: str) -> list[VersionRow]:
    rows = session.execute(
        sa.select(*_VERSION_COLUMNS)
        .where(CalendarVersion.name == name)
        .order_by(CalendarVersion.version)
    )
    return [VersionRow(*r) for r in rows]


def file_hashes(conn: Connection | Session) -> dict[str, str | None]:
    """Every stored calendar's last recorded file hash (None: not recorded from a file)."""
    rows = conn.execute(sa.select(StoredCalendar.name, StoredCalendar.file_hash))
    return dict(rows.tuples().all())  # not dict(rows): a Result has keys(), its column names


def version_mark(conn: Connection) -> tuple[int, int]:
    """(count, max id) of all versions: changes whenever a version is committed.

    The count catches a version whose id is lower than one already seen (PostgreSQL hands out
    ids before commit, so commits may land out of id order)."""
    count, top = conn.execute(
        sa.select(sa.func.count(CalendarVersion.id), sa.func.max(CalendarVersion.id))
    ).one()
    return int(count), int(top or 0)


def all_versions(conn: Connection) -> list[VersionRow]:
    rows = conn.execute(
        sa.select(*_VERSION_COLUMNS).order_by(CalendarVersion.name, CalendarVersion.version)
    )
    return [VersionRow(*r) for r in rows]


__all__ = ["ReplanJob", "VersionRow", "add_replan", "replan_jobs", "unfinished_replans"]
