"""All SQL of the calendar store: calendars, versions, re-plan jobs.

Writers of a calendar's versions lock its `calendars` row (`SELECT ... FOR UPDATE`; SQLite's
`BEGIN IMMEDIATE` serialises writers anyway), so versions are numbered consecutively and the
rules about `effective_from` are checked against the true latest version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from sla_engine.calendar_store.models import CalendarReplan, CalendarVersion, StoredCalendar
from sla_engine.json_types import JsonObject
from sla_engine.storage.models import TicketMetric


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


# --- re-plan jobs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplanJob:
    id: int
    calendar: str
    version: int
    effective_from: datetime | None
    retroactive: bool
    cursor: str | None
    tickets_done: int


_JOB_COLUMNS = (
    CalendarReplan.id,
    CalendarReplan.calendar,
    CalendarReplan.version,
    CalendarReplan.effective_from,
    CalendarReplan.retroactive,
    CalendarReplan.cursor,
    CalendarReplan.tickets_done,
)


def add_replan(
    session: Session,
    calendar: str,
    version: int,
    effective_from: datetime | None,
    retroactive: bool,
    now: datetime,
) -> None:
    session.execute(
        sa.insert(CalendarReplan).values(
            calendar=calendar,
            version=version,
            effective_from=effective_from,
            retroactive=retroactive,
            created_at=now,
            cursor=None,
            tickets_done=0,
            lease_owner=None,
            lease_until=None,
            finished_at=None,
        )
    )


def unfinished_replans(conn: Connection | Session) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count(CalendarReplan.id)).where(CalendarReplan.finished_at.is_(None))
        ).scalar_one()
    )


def claim_replan(
    session: Session, owner: str, now: datetime, lease_until: datetime
) -> ReplanJob | None:
    """The oldest unfinished job not leased by another live worker, now leased to `owner`."""
    r = CalendarReplan
    row = session.execute(
        sa.select(*_JOB_COLUMNS)
        .where(
            r.finished_at.is_(None),
            sa.or_(r.lease_until.is_(None), r.lease_until < now, r.lease_owner == owner),
        )
        .order_by(r.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    session.execute(
        sa.update(r).where(r.id == row.id).values(lease_owner=owner, lease_until=lease_until)
    )
    return ReplanJob(*row)


def advance_replan(
    session: Session,
    job: ReplanJob,
    owner: str,
    cursor: str,
    done: int,
    lease_until: datetime,
) -> bool:
    """Move the job's cursor past a batch; False when the lease was lost (then roll back)."""
    r = CalendarReplan
    moved = session.execute(
        sa.update(r)
        .where(r.id == job.id, r.lease_owner == owner, r.finished_at.is_(None))
        .values(cursor=cursor, tickets_done=r.tickets_done + done, lease_until=lease_until)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def release_replan(session: Session, job: ReplanJob, owner: str) -> None:
    r = CalendarReplan
    session.execute(
        sa.update(r)
        .where(r.id == job.id, r.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def finish_replan(session: Session, job: ReplanJob, owner: str, now: datetime) -> bool:
    r = CalendarReplan
    done = session.execute(
        sa.update(r)
        .where(r.id == job.id, r.lease_owner == owner, r.finished_at.is_(None))
        .values(finished_at=now, lease_owner=None, lease_until=None)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def affected_tickets(
    session: Session,
    calendar: str,
    effective_from: datetime | None,
    after: str | None,
    limit: int,
) -> Sequence[str]:
    """Ids of the tickets, after `after` in id order, with a metric on `calendar` that was
    running at `effective_from` or is running now (those the new version can change)."""
    m = TicketMetric
    conditions = [m.calendar == calendar]
    if effective_from is not None:
        conditions.append(sa.or_(m.stopped_at.is_(None), m.stopped_at >= effective_from))
    if after is not None:
        conditions.append(m.ticket_id > after)
    return list(
        session.scalars(
            sa.select(m.ticket_id)
            .where(*conditions)
            .group_by(m.ticket_id)
            .order_by(m.ticket_id)
            .limit(limit)
        )
    )


def replan_jobs(session: Session, limit: int = 100) -> list[JsonObject]:
    """The latest jobs, newest first, as plain values (for status views and tests)."""
    r = CalendarReplan
    rows = session.execute(
        sa.select(
            r.id, r.calendar, r.version, r.created_at, r.cursor, r.tickets_done, r.finished_at
        )
        .order_by(r.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]
