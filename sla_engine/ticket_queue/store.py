"""All the queue's SQL: one statement for a page, one for the page's metric rows.

A page is a UNION ALL of index walks, each in the page's order and cut after `limit + 1`
rows, merged and cut again; so its cost does not grow with the number of tickets. One walk
per wanted status (an `IN` list would make both databases sort every match), through:

- `order=breach_at`: `(status, queue_breach_at, id)`; with `policy=`, `(status,
  current_policy, queue_breach_at, id)`; with `breached=`, `(status, stopped_late,
  queue_breach_at, id)` (true: the overdue range `queue_breach_at < now` plus the rows
  stopped late after it; false: `stopped_late = false AND queue_breach_at >= now`); with
  `calendar=`, one walk of `ticket_queue_calendars (calendar, queue_breach_at, ticket_id)`
  (only open and pending tickets have running metrics);
- `metric=` (breach order): the partial indexes of that metric's running rows, by
  `breach_at` while the clock runs, then the paused ones by ticket;
- `order=-created_at`: `(status, created_at, id)` backwards, or `ticket_queue_calendars
  (calendar, created_at, ticket_id)`.

The other filters are checked on the rows each walk meets (`metric=` and `calendar=` look the
ticket's metric rows up by primary key). After a cursor, a walk starts at the row value `(key,
id) > (k, i)`: a range start on the index, on both databases, even inside a long run of equal
keys (9999-12-31 for every ticket with nothing running).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Select,
    String,
    Table,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from sla_engine.storage.models import PAUSED, Ticket, TicketMetric, TicketQueueCalendar
from sla_engine.storage.types import UTCDateTime
from sla_engine.ticket_queue.listing import BREACH_ORDER, Listing

if TYPE_CHECKING:
    from sla_engine.ticket_queue.views import MetricRow, QueueRow

    class PageRow(QueueRow, Protocol):
        """A listed ticket with its walk's key (a cursor's position)."""

        @property
        def key(self) -> datetime: ...


TICKETS = cast(Table, Ticket.__table__)
METRICS = cast(Table, TicketMetric.__table__)
CALENDARS = cast(Table, TicketQueueCalendar.__table__)
RUNNING = METRICS.alias("running_metric")
PAGE_COLUMNS = ("id", "policy", "calendar", "status", "created_at", "key")
PageColumns = tuple[str, str, str, str, datetime, datetime]
_NOW = bindparam("now", type_=UTCDateTime())
_BREACH_BEFORE = bindparam("breach_before", type_=UTCDateTime())
_AFTER_KEY = bindparam("after_key", type_=UTCDateTime())
_AFTER_ID = bindparam("after_id", type_=String())
# where a walk from `now` starts: (now, "") or, when later, the cursor's (key, id)
_FROM_KEY = bindparam("from_key", type_=UTCDateTime())
_FROM_ID = bindparam("from_id", type_=String())
# the paused metrics' walk after a cursor: past this ticket id ("" when the cursor is before)
_PAUSED_AFTER_ID = bindparam("paused_after_id", type_=String())
# PAUSED as a column of the paused metrics' walk: typed in SQL too (an untyped literal cannot
# share a UNION column with timestamps on PostgreSQL; SQLite keeps its text form).
_PAUSED_KEY = type_coerce(
    sql_cast(
        literal(PAUSED, UTCDateTime()),
        DateTime(timezone=True).with_variant(String(), "sqlite"),
    ),
    UTCDateTime(),
)


@dataclass(frozen=True)
class Shape:
    """What a page's statement depends on; the values go in as bound parameters, so each
    shape's statement is built once (building one costs as much as running it)."""

    statuses: tuple[str, ...]
    order: str
    metric: str | None
    limit: int
    policy: bool
    calendar: bool
    breached: bool | None
    breach_before: bool
    after: bool

    @property
    def descending(self) -> bool:
        return self.order != BREACH_ORDER


@dataclass(frozen=True)
class Walk:
    """One index walk: the rows it reads, its key and id columns, its own conditions.

    `queue_key` is the ticket's `queue_breach_at` as the walk reads it; a walk whose key is a
    constant orders by ticket id alone (so that its index gives the order). A walk `from_now`
    starts at `now`, or after a cursor at the later of `now` and the cursor's position: one
    lower bound (SQLite ranges an index on one of two and checks the other on every row
    between).
    """

    source: FromClause
    key: ColumnElement[datetime]
    ticket_id: ColumnElement[str]
    conditions: tuple[ColumnElement[bool], ...]
    queue_key: ColumnElement[datetime] = TICKETS.c.queue_breach_at
    constant_key: bool = False
    from_now: bool = False  # starts at `key >= now`


def shape_of(listing: Listing) -> Shape:
    return Shape(
        statuses=listing.statuses,
        order=listing.order,
        metric=listing.metric,
        limit=listing.limit,
        policy=listing.policy is not None,
        calendar=listing.calendar is not None,
        breached=listing.breached,
        breach_before=listing.breach_before is not None,
        after=listing.after is not None,
    )


def page_params(listing: Listing, now: datetime) -> dict[str, object]:
    after = listing.after
    start = (now, "")
    if after is not None:
        start = max(start, (after.key, after.ticket_id))
    return {
        "policy": listing.policy,
        "calendar": listing.calendar,
        "now": now,
        "breach_before": listing.breach_before,
        "after_key": None if after is None else after.key,
        "after_id": None if after is None else after.ticket_id,
        "from_key": start[0],
        "from_id": start[1],
        "paused_after_id": after.ticket_id if after is not None and after.key >= PAUSED else "",
    }


def page_rows(session: Session, listing: Listing, now: datetime) -> list[PageRow]:
    """Up to `listing.limit + 1` rows (the extra one says another page follows)."""
    return list(session.execute(page_query(listing), page_params(listing, now)))


def page_query(listing: Listing) -> Select[PageColumns]:
    """The page's statement (with `page_params` as its parameters)."""
    return _statement(shape_of(listing))


@lru_cache(maxsize=512)
def _statement(shape: Shape) -> Select[PageColumns]:
    selects = [_select(shape, walk) for walk in _walks(shape)]
    if len(selects) == 1:
        return selects[0]
    merged = union_all(*(select(s.subquery()) for s in selects)).subquery("page")
    return (
        select(*(merged.c[name] for name in PAGE_COLUMNS))
        .order_by(*_ordering(merged.c.key, merged.c.id, shape.descending))
        .limit(shape.limit + 1)
    )


def _select(shape: Shape, walk: Walk) -> Select[PageColumns]:
    query = (
        select(
            TICKETS.c.id,
            TICKETS.c.current_policy.label("policy"),
            TICKETS.c.calendar,
            TICKETS.c.status,
            TICKETS.c.created_at,
            walk.key.label("key"),
        )
        .select_from(walk.source)
        .where(*walk.conditions, *_residual(shape, walk))
    )
    position = tuple_(walk.key, walk.ticket_id)
    if walk.constant_key:
        if shape.after:
            query = query.where(walk.ticket_id > _PAUSED_AFTER_ID)
    elif walk.from_now:
        query = query.where(position > tuple_(_FROM_KEY, _FROM_ID))
    elif shape.after:
        after = tuple_(_AFTER_KEY, _AFTER_ID)
        query = query.where(position < after if shape.descending else position > after)
    order = _ordering(walk.key, walk.ticket_id, shape.descending)
    return query.order_by(*order[walk.constant_key :]).limit(shape.limit + 1)


def _walks(shape: Shape) -> list[Walk]:
    if shape.metric is not None and shape.order == BREACH_ORDER:
        return _metric_walks(shape)
    if shape.calendar:
        return [_calendar_walk(shape)]
    if shape.order != BREACH_ORDER:
        return [_ticket_walk(TICKETS.c.created_at, status) for status in shape.statuses]
    key = TICKETS.c.queue_breach_at
    if shape.breached is True:
        overdue = [_ticket_walk(key, status, key < _NOW) for status in shape.statuses]
        late = [
            _ticket_walk(key, status, TICKETS.c.stopped_late == true(), from_now=True)
            for status in shape.statuses
        ]
        return overdue + late
    if shape.breached is False:
        return [
            _ticket_walk(key, status, TICKETS.c.stopped_late == false(), from_now=True)
            for status in shape.statuses
        ]
    return [_ticket_walk(key, status) for status in shape.statuses]


def _ticket_walk(
    key: ColumnElement[datetime],
    status: str,
    *conditions: ColumnElement[bool],
    from_now: bool = False,
) -> Walk:
    status_is = TICKETS.c.status == status
    return Walk(TICKETS, key, TICKETS.c.id, (status_is, *conditions), from_now=from_now)


def _calendar_walk(shape: Shape) -> Walk:
    """The tickets with a running metric in the calendar: all open or pending (a running
    metric stops when its ticket is solved or closed), so one walk serves every status."""
    key = CALENDARS.c.queue_breach_at if shape.order == BREACH_ORDER else CALENDARS.c.created_at
    return Walk(
        CALENDARS.join(TICKETS, TICKETS.c.id == CALENDARS.c.ticket_id),
        key,
        CALENDARS.c.ticket_id,
        (CALENDARS.c.calendar == bindparam("calendar"), TICKETS.c.status.in_(shape.statuses)),
        queue_key=CALENDARS.c.queue_breach_at,
    )


def _metric_walks(shape: Shape) -> list[Walk]:
    """The metric's running rows: by breach_at while the clock runs, then the paused ones
    (which cannot breach before they resume) by ticket."""
    source = METRICS.join(TICKETS, TICKETS.c.id == METRICS.c.ticket_id)
    running = (
        METRICS.c.metric == shape.metric,
        METRICS.c.stopped_at.is_(None),
        TICKETS.c.status.in_(shape.statuses),
    )
    ticking = Walk(
        source, METRICS.c.breach_at, METRICS.c.ticket_id, (*running, METRICS.c.status != "paused")
    )
    paused = Walk(
        source,
        _PAUSED_KEY,
        METRICS.c.ticket_id,
        (*running, METRICS.c.status == "paused"),
        constant_key=True,
    )
    return [ticking] if shape.breach_before else [ticking, paused]


def _residual(shape: Shape, walk: Walk) -> list[ColumnElement[bool]]:
    """The filters the walk's index does not serve, checked on the rows it meets."""
    filters: list[ColumnElement[bool]] = []
    if shape.policy:
        filters.append(TICKETS.c.current_policy == bindparam("policy"))
    by_metric = shape.metric is not None and shape.order == BREACH_ORDER
    if shape.calendar and by_metric:
        filters.append(
            exists().where(
                RUNNING.c.ticket_id == TICKETS.c.id,
                RUNNING.c.stopped_at.is_(None),
                RUNNING.c.calendar == bindparam("calendar"),
            )
        )
    if shape.metric is not None and not by_metric:
        filters.append(_runs(shape.metric, shape.breach_before))
    served = shape.order == BREACH_ORDER and not shape.calendar and not by_metric
    if shape.breached is not None and not served:
        breached = or_(walk.queue_key < _NOW, TICKETS.c.stopped_late == true())
        filters.append(breached if shape.breached else ~breached)
    if shape.breach_before and shape.metric is None:
        filters.append(walk.queue_key < _BREACH_BEFORE)
    elif shape.breach_before and by_metric:
        filters.append(walk.key < _BREACH_BEFORE)
    return filters


def _runs(metric: str, breach_before: bool) -> ColumnElement[bool]:
    """The ticket's `metric` runs (and, if asked, its clock runs and breaches before
    `breach_before`)."""
    conditions = [
        RUNNING.c.ticket_id == TICKETS.c.id,
        RUNNING.c.metric == metric,
        RUNNING.c.stopped_at.is_(None),
    ]
    if breach_before:
        conditions += [RUNNING.c.status != "paused", RUNNING.c.breach_at < _BREACH_BEFORE]
    return exists().where(*conditions)


def _ordering(
    key: ColumnElement[datetime], ticket_id: ColumnElement[str], descending: bool
) -> list[ColumnElement[datetime] | ColumnElement[str]]:
    return [key.desc(), ticket_id.desc()] if descending else [key, ticket_id]


def metric_rows(session: Session, ticket_ids: Sequence[str]) -> list[MetricRow]:
    """The stored metric rows of the page's tickets (primary-key lookups)."""
    if not ticket_ids:
        return []
    query = select(
        METRICS.c.ticket_id,
        METRICS.c.metric,
        METRICS.c.status,
        METRICS.c.policy,
        METRICS.c.calendar,
        METRICS.c.breach_at,
        METRICS.c.stopped_at,
        METRICS.c.business_elapsed_s,
        METRICS.c.updated_at,
    ).where(METRICS.c.ticket_id.in_(list(ticket_ids)))
    return list(session.execute(query))
