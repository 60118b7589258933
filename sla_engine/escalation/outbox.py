"""The delivery outbox: enqueue, claim with a lease, complete or fail fenced on the lease.

Claiming is one UPDATE joined to a materialised CTE of due rows (as procrastinate does): on
PostgreSQL the CTE is `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint rows
without waiting, and being materialised it runs once (an `IN (sub-select ... LIMIT)` may be
re-run per row by the planner, which is quadratic on a large backlog); on SQLite
the transaction is `BEGIN IMMEDIATE` (see `storage/db.py`), so claims are serialised. A row is
claimable when queued and due, or when its lease has expired (its worker died or stalled).
Completion and failure only touch a row whose `lease_owner` is still the caller's token, so a
stale worker cannot overwrite a row another worker reclaimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.errors import Conflict, InputError, NotFound
from sla_engine.escalation.models import DELIVERY_STATUSES, EscalationDelivery
from sla_engine.storage.types import UTCDateTime
from sla_engine.storage.upsert import insert_ignoring_duplicates

_NAMESPACE = uuid.UUID("6f1c2f3e-52a1-4c1e-9d7e-5a1e0e5ca1a7")


def delivery_id(
    ticket_id: str, metric: str, cycle: int, threshold: str, destination: str, kind: str
) -> str:
    """The `webhook-id` of one notification: derived from its key, so the same escalation
    always carries the same id, whoever writes it and however often it is retried."""
    name = "\x1f".join((ticket_id, metric, str(cycle), threshold, destination, kind))
    return "msg_" + uuid.uuid5(_NAMESPACE, name).hex


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to one worker: `token` must be shown to complete or fail it."""

    id: str
    token: str
    ticket_id: str
    metric: str
    cycle: int
    threshold: str
    destination: str
    kind: str
    payload: str
    attempts: int
    due_at: datetime


def new_delivery(
    *,
    ticket_id: str,
    metric: str,
    cycle: int,
    threshold: str,
    destination: str,
    kind: str,
    payload: str,
    due_at: datetime,
    not_before: datetime,
    now: datetime,
    timer_id: int | None = None,
) -> EscalationDelivery:
    return EscalationDelivery(
        id=delivery_id(ticket_id, metric, cycle, threshold, destination, kind),
        timer_id=timer_id,
        ticket_id=ticket_id,
        metric=metric,
        cycle=cycle,
        threshold=threshold,
        destination=destination,
        kind=kind,
        payload=payload,
        status="queued",
        attempts=0,
        due_at=due_at,
        not_before=not_before,
        lease_owner=None,
        lease_until=None,
        created_at=now,
        updated_at=now,
    )


def enqueue(session: Session, delivery: EscalationDelivery) -> bool:
    """Add a delivery unless one with the same id exists; True when added."""
    if session.get(EscalationDelivery, delivery.id) is not None:
        return False
    session.add(delivery)
    return True


def enqueue_many(session: Session, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert complete delivery rows in one statement; a row whose id exists is left as it
    is. A Core insert on the table: the rows are complete, so no ORM bookkeeping per row."""
    insert_ignoring_duplicates(session, EscalationDelivery, rows)


def _build_statements() -> dict[str, sa.Executable]:
    """The delivery loop's statements, built once: Core statements on the table (no ORM
    bookkeeping per row) whose SQL is cached after the first run; each pass only binds
    values."""
    t = cast(sa.Table, EscalationDelivery.__table__)
    now = sa.bindparam("now", type_=UTCDateTime())
    token = sa.bindparam("token", type_=sa.String())
    candidates = (
        sa.select(t.c.id)
        .where(
            sa.or_(
                sa.and_(t.c.status == "queued", t.c.not_before <= now),
                sa.and_(t.c.status == "sending", t.c.lease_until < now),
            )
        )
        .order_by(t.c.not_before)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .with_for_update(skip_locked=True)
        .cte("candidates")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    code = sa.bindparam("code", type_=sa.Integer())
    released = {"lease_owner": None, "lease_until": None, "last_status": code, "updated_at": now}
    fenced = sa.and_(
        t.c.id == sa.bindparam("delivery_id", type_=sa.String()),
        t.c.lease_owner == token,
        t.c.status == "sending",
    )
    return {
        "claim": sa.update(t)
        .where(t.c.id == candidates.c.id)
        .values(
            status="sending",
            lease_owner=token,
            lease_until=sa.bindparam("lease_until", type_=UTCDateTime()),
            attempts=t.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            t.c.id,
            t.c.ticket_id,
            t.c.metric,
            t.c.cycle,
            t.c.threshold,
            t.c.destination,
            t.c.kind,
            t.c.payload,
            t.c.attempts,
            t.c.due_at,
        ),
        "complete": sa.update(t)
        .where(
            t.c.id.in_(sa.bindparam("ids", expanding=True)),
            t.c.lease_owner == token,
            t.c.status == "sending",
        )
        .values(status="sent", sent_at=now, last_error=None, **released)
        .returning(t.c.id),
        "retry": sa.update(t)
        .where(fenced)
        .values(
            status="queued",
            not_before=sa.bindparam("at", type_=UTCDateTime()),
            last_error=sa.bindparam("error", type_=sa.Text()),
            **released,
        ),
        "give_up": sa.update(t)
        .where(fenced)
        .values(status="dead", last_error=sa.bindparam("error", type_=sa.Text()), **released),
    }


_STATEMENTS = _build_statements()


def claim(
    session: Session, *, now: datetime, lease: timedelta, limit: int, worker: str
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to a fresh token; the caller commits."""
    token = f"{worker}:{uuid.uuid4().hex[:12]}"
    rows = session.execute(
        _STATEMENTS["claim"],
        {"now": now, "token": token, "limit": limit, "lease_until": now + lease},
    ).all()
    return [
        Claimed(
            r.id,
            token,
            r.ticket_id,
            r.metric,
            r.cycle,
            r.threshold,
            r.destination,
            r.kind,
            r.payload,
            r.attempts,
            r.due_at,
        )
        for r in rows
    ]


def complete(session: Session, item: Claimed, *, now: datetime, status: int | None) -> bool:
    """Mark sent; False when the lease was lost (another worker owns the row now)."""
    return item.id in complete_many(session, [item], now=now, status=status)


def complete_many(
    session: Session, items: list[Claimed], *, now: datetime, status: int | None
) -> set[str]:
    """Mark sent every item whose lease is still its own, one fenced statement per claim
    token; returns the ids completed."""
    completed: set[str] = set()
    by_token: dict[str, list[str]] = {}
    for item in items:
        by_token.setdefault(item.token, []).append(item.id)
    for token, ids in by_token.items():
        result = session.execute(
            _STATEMENTS["complete"], {"ids": ids, "token": token, "now": now, "code": status}
        )
        completed.update(result.scalars())
    return completed


def _fenced_update(session: Session, name: str, item: Claimed, **values: object) -> bool:
    result = session.execute(
        _STATEMENTS[name], {"delivery_id": item.id, "token": item.token, **values}
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry_later(
    session: Session, item: Claimed, *, now: datetime, at: datetime, status: int | None, error: str
) -> bool:
    """Queue again for `at`; False when the lease was lost."""
    return _fenced_update(session, "retry", item, now=now, at=at, code=status, error=error)


def give_up(
    session: Session, item: Claimed, *, now: datetime, status: int | None, error: str
) -> bool:
    """Move to the dead-letter state; False when the lease was lost."""
    return _fenced_update(session, "give_up", item, now=now, code=status, error=error)


def cancel_queued(
    session: Session,
    *,
    ticket_id: str,
    metric: str,
    cycle: int | None,
    now: datetime,
    reason: str,
    kinds: tuple[str, ...] = ("webhook", "trigger"),
) -> int:
    """Cancel notifications of a metric not yet handed to a worker (queued, incl. held)."""
    t = EscalationDelivery
    where = [t.ticket_id == ticket_id, t.metric == metric, t.status == "queued", t.kind.in_(kinds)]
    if cycle is not None:
        where.append(t.cycle == cycle)
    result = session.execute(
        sa.update(t)
        .where(*where)
        .values(status="cancelled", last_error=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_deliveries(
    session: Session, *, ticket: str | None = None, status: str | None = None, limit: int = 500
) -> list[EscalationDelivery]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise InputError(
            f"status: {status!r} is not one of {', '.join(DELIVERY_STATUSES)}",
            field="status",
            value=status,
        )
    t = EscalationDelivery
    stmt = sa.select(t).order_by(t.due_at, t.id).limit(limit)
    if ticket is not None:
        stmt = stmt.where(t.ticket_id == ticket)
    if status is not None:
        stmt = stmt.where(t.status == status)
    return list(session.scalars(stmt))


def replay(session: Session, delivery_id_: str, *, now: datetime) -> EscalationDelivery:
    """Queue a dead (or sent, or cancelled) delivery again, keeping its `webhook-id`."""
    row = session.get(EscalationDelivery, delivery_id_, with_for_update=True)
    if row is None:
        raise NotFound(
            f"escalation {delivery_id_!r} does not exist", field="id", value=delivery_id_
        )
    if row.status in ("queued", "sending"):
        raise Conflict(
            f"escalation {delivery_id_!r} is {row.status}; only a dead, sent or "
            "cancelled escalation can be replayed",
            field="id",
            value=delivery_id_,
        )
    row.status = "queued"
    row.attempts = 0
    row.not_before = now
    row.lease_owner = None
    row.lease_until = None
    row.updated_at = now
    return row
