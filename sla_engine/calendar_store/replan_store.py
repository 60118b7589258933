"""The SQL of re-plan jobs (`calendar_replans`): queueing, leasing, slicing, cursors, and
which tickets a job walks. `store.add_replan` is this module's, re-exported there."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from sla_engine.calendar_store.models import CalendarReplan
from sla_engine.json_types import JsonObject
from sla_engine.storage.models import TicketEvent, TicketMetric

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplanJob:
    """A job's row: the whole job, or one slice of it (ids in (after_ticket, through_ticket])."""

    id: int
    calendar: str
    version: int
    effective_from: datetime | None
    retroactive: bool
    cursor: str | None
    tickets_done: int
    after_ticket: str | None = None
    through_ticket: str | None = None

    @property
    def whole(self) -> bool:
        """Not split (yet): the row covers every affected ticket."""
        return self.after_ticket is None and self.through_ticket is None


_JOB_COLUMNS = (
    CalendarReplan.id,
    CalendarReplan.calendar,
    CalendarReplan.version,
    CalendarReplan.effective_from,
    CalendarReplan.retroactive,
    CalendarReplan.cursor,
    CalendarReplan.tickets_done,
    CalendarReplan.after_ticket,
    CalendarReplan.through_ticket,
)


@dataclass(frozen=True, slots=True)
class Covered:
    """Unfinished rows of earlier versions that a new job took over (see `add_replan`)."""

    versions: tuple[int, ...]
    effective_from: datetime | None
    retroactive: bool


def add_replan(
    session: Session,
    calendar: str,
    version: int,
    effective_from: datetime | None,
    retroactive: bool,
    now: datetime,
) -> Covered | None:
    """Queue the re-plan of `calendar` for `version`. Unfinished rows of the same calendar
    (unstarted or in progress) are closed and covered by this job, from the earliest
    `effective_from` of them all and retroactive if any was: two quick changes walk the
    tickets once. A worker in the middle of a covered row loses its lease at its next batch
    (rolled back). Called with the calendar's row locked, so jobs of one calendar queue up."""
    r = CalendarReplan
    earlier = session.execute(
        sa.select(r.version, r.effective_from, r.retroactive).where(
            r.calendar == calendar, r.finished_at.is_(None)
        )
    ).all()
    covered = None
    if earlier:
        starts = [effective_from, *(row.effective_from for row in earlier)]
        effective_from = None if None in starts else min(s for s in starts if s is not None)
        retroactive = retroactive or any(row.retroactive for row in earlier)
        versions = tuple(sorted({row.version for row in earlier}))
        covered = Covered(versions, effective_from, retroactive)
        log.info(
            "calendar %s version %d: its re-plan covers the unfinished one of version %s (from %s)",
            calendar,
            version,
            ", ".join(map(str, versions)),
            effective_from.isoformat() if effective_from else "the beginning",
        )
        session.execute(
            sa.update(r)
            .where(r.calendar == calendar, r.finished_at.is_(None))
            .values(finished_at=now, lease_owner=None, lease_until=None)
        )
    session.execute(
        sa.insert(r).values(
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
            after_ticket=None,
            through_ticket=None,
        )
    )
    return covered


def unfinished_replans(conn: Connection | Session) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count(CalendarReplan.id)).where(CalendarReplan.finished_at.is_(None))
        ).scalar_one()
    )


def claim_replan(
    session: Session, owner: str, now: datetime, lease_until: datetime
) -> ReplanJob | None:
    """The oldest unfinished row not leased by another live worker, now leased to `owner`."""
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


def split_replan(
    session: Session, job: ReplanJob, owner: str, bounds: Sequence[str], now: datetime
) -> ReplanJob | None:
    """Split a whole, unstarted job leased by `owner` at `bounds` (ascending ids): its row
    keeps the ids up to bounds[0], a new row each takes the next range, the last one every id
    after bounds[-1]. Returns the caller's narrowed row (None: the row is no longer the
    caller's, whole and unstarted; nothing changed)."""
    r = CalendarReplan
    narrowed = session.execute(
        sa.update(r)
        .where(
            r.id == job.id,
            r.lease_owner == owner,
            r.finished_at.is_(None),
            r.cursor.is_(None),
            r.after_ticket.is_(None),
            r.through_ticket.is_(None),
        )
        .values(through_ticket=bounds[0])
    )
    if not narrowed.rowcount:  # type: ignore[attr-defined]
        return None
    ranges = list(zip(bounds, [*bounds[1:], None], strict=True))
    session.execute(
        sa.insert(r),
        [
            {
                "calendar": job.calendar,
                "version": job.version,
                "effective_from": job.effective_from,
                "retroactive": job.retroactive,
                "created_at": now,
                "cursor": None,
                "tickets_done": 0,
                "lease_owner": None,
                "lease_until": None,
                "finished_at": None,
                "after_ticket": low,
                "through_ticket": high,
            }
            for low, high in ranges
        ],
    )
    return ReplanJob(
        job.id,
        job.calendar,
        job.version,
        job.effective_from,
        job.retroactive,
        job.cursor,
        job.tickets_done,
        None,
        bounds[0],
    )


def advance_replan(
    session: Session,
    job: ReplanJob,
    owner: str,
    cursor: str,
    done: int,
    lease_until: datetime,
) -> bool:
    """Move the row's cursor past a batch; False when the lease was lost (then roll back)."""
    moved = session.connection().execute(
        _ADVANCE,
        {
            "b_id": job.id,
            "b_owner": owner,
            "b_cursor": cursor,
            "b_done": done,
            "b_until": lease_until,
        },
    )
    return bool(moved.rowcount)


# Core statements built once (an ORM-enabled UPDATE, or a SELECT built anew, cost a batch
# more CPU than its statement: about 1.5 and 2 ms a batch)
_REPLANS = cast(sa.Table, CalendarReplan.__table__)
_ADVANCE = (
    sa.update(_REPLANS)
    .where(
        _REPLANS.c.id == sa.bindparam("b_id"),
        _REPLANS.c.lease_owner == sa.bindparam("b_owner"),
        _REPLANS.c.finished_at.is_(None),
    )
    .values(
        cursor=sa.bindparam("b_cursor", type_=_REPLANS.c.cursor.type),
        tickets_done=_REPLANS.c.tickets_done + sa.bindparam("b_done", type_=sa.Integer()),
        lease_until=sa.bindparam("b_until", type_=_REPLANS.c.lease_until.type),
    )
)


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


def _metric_ids(calendar: str, effective_from: datetime | None) -> sa.Select[tuple[str]]:
    """Tickets with a metric on `calendar` that was running at `effective_from` or is now."""
    m = TicketMetric
    conditions = [m.calendar == calendar]
    if effective_from is not None:
        conditions.append(sa.or_(m.stopped_at.is_(None), m.stopped_at >= effective_from))
    return sa.select(m.ticket_id).where(*conditions).group_by(m.ticket_id).order_by(m.ticket_id)


def _moved_ids(effective_from: datetime | None) -> sa.Select[tuple[str]]:
    """Tickets moved to another calendar (`calendar_changed`) at or after `effective_from`:
    their history may have used the changed calendar though their metric rows no longer
    name it (a superset; a refresh of an unaffected ticket rewrites nothing)."""
    e = TicketEvent
    conditions = [e.type == "calendar_changed"]
    if effective_from is not None:
        conditions.append(e.occurred_at >= effective_from)
    return sa.select(e.ticket_id).where(*conditions).group_by(e.ticket_id).order_by(e.ticket_id)


def _in_range(
    query: sa.Select[tuple[str]], column: Any, after: str | None, through: str | None
) -> sa.Select[tuple[str]]:
    if after is not None:
        query = query.where(column > after)
    if through is not None:
        query = query.where(column <= through)
    return query


@lru_cache(maxsize=32)
def _next_ids(moved: bool, since: bool, after: bool, through: bool) -> sa.Select[tuple[str]]:
    """`affected_tickets`' query of metric ids (or of moves), built once per shape: the
    calendar, `effective_from`, the range's ends and the limit are bound parameters
    (b_calendar, b_from, b_after, b_through, b_limit)."""
    instant = TicketMetric.stopped_at.type
    start = sa.bindparam("b_from", type_=instant) if since else None
    if moved:
        query, column = _moved_ids(start), TicketEvent.ticket_id  # type: ignore[arg-type]
    else:
        calendar = sa.bindparam("b_calendar", type_=TicketMetric.calendar.type)
        query, column = _metric_ids(calendar, start), TicketMetric.ticket_id  # type: ignore[arg-type]
    ids = column.type
    return _in_range(
        query,
        column,
        sa.bindparam("b_after", type_=ids) if after else None,  # type: ignore[arg-type]
        sa.bindparam("b_through", type_=ids) if through else None,  # type: ignore[arg-type]
    ).limit(sa.bindparam("b_limit", type_=sa.Integer()))


def affected_tickets(
    session: Session | Connection,
    job: ReplanJob,
    after: str | None,
    limit: int,
) -> list[str]:
    """The next `limit` ids of the row's range after `after` (None: from the range's start) of
    the tickets the new version can change: a metric on the calendar running at its
    `effective_from` or now, or a move away from the calendar since then."""
    conn = session.connection() if isinstance(session, Session) else session
    start = after if after is not None else job.after_ticket
    since = job.effective_from is not None
    params = {
        "b_calendar": job.calendar,
        "b_from": job.effective_from,
        "b_after": start,
        "b_through": job.through_ticket,
        "b_limit": limit,
    }
    query = _next_ids(False, since, start is not None, job.through_ticket is not None)
    ids = list(conn.execute(query, params).scalars())
    # moves are few: read those up to where the metric ids end (the range scan stays short)
    upto = ids[-1] if len(ids) == limit else job.through_ticket
    query = _next_ids(True, since, start is not None, upto is not None)
    moved = conn.execute(query, {**params, "b_through": upto}).scalars().all()
    if moved:
        ids = sorted(set(ids).union(moved))[:limit]
    return ids


def slice_bounds(conn: Connection | Session, job: ReplanJob, size: int, most: int) -> list[str]:
    """Where to split a whole job into slices of about `size` affected tickets (at most
    `most` slices): the last id of each slice but the last; [] when one slice is enough."""
    ids = conn.scalars(_metric_ids(job.calendar, job.effective_from)).all()
    count = min(most, len(ids) // size)
    if count < 2:
        return []
    step = len(ids) / count
    return [ids[int(step * k) - 1] for k in range(1, count)]


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
