"""The `ticket_metrics` rows: each metric's current cycle, kept for queries across tickets
(the queue, reports, re-planning). Written only where they changed; `updated_at` marks it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, insert, select, tuple_
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from sla_engine.core.clock import TicketState
from sla_engine.core.metric_clock import optional_us
from sla_engine.storage.bulk_update import one_of, update_rows
from sla_engine.storage.driver_statements import read_rows
from sla_engine.storage.models import TicketMetric
from sla_engine.storage.write_connection import connection_of

METRIC_FIELDS = (  # the columns of a metric row the clock derives
    "cycle",
    "status",
    "policy",
    "calendar",
    "started_at",
    "target_at",
    "breach_at",
    "stopped_at",
    "business_elapsed_s",
)
METRICS_TABLE = cast(Table, TicketMetric.__table__)
Encoded = dict[str, list[Any]]
"""A ticket's metric rows as JSON lists by metric (what the saved clock keeps)."""

_COLUMNS = (METRICS_TABLE.c.metric, *(METRICS_TABLE.c[name] for name in METRIC_FIELDS))
_METRICS_OF_TICKET = select(*_COLUMNS).where(METRICS_TABLE.c.ticket_id == bindparam("ticket_id"))


@lru_cache(maxsize=8)
def _metrics_of_tickets(dialect: Dialect) -> Select[Any]:
    table = METRICS_TABLE.c
    return select(table.ticket_id, *_COLUMNS).where(one_of(table.ticket_id, "ids", dialect))


def metric_values(state: TicketState) -> dict[str, dict[str, Any]]:
    """The `ticket_metrics` columns (but `updated_at`) each metric of `state` stores."""
    return {
        name: {
            "cycle": metric.cycle,
            "status": metric.status,
            "policy": state.policy,
            "calendar": metric.calendar,
            "started_at": metric.started_at,
            "target_at": metric.target_at,
            "breach_at": metric.breach_at,
            "stopped_at": metric.stopped_at,
            "business_elapsed_s": float(metric.business_elapsed_s),
        }
        for name, metric in state.metrics.items()
    }


def encoded_metric_rows(values: Mapping[str, Mapping[Any, Any]]) -> Encoded:
    """Metric rows as JSON lists (instants as UTC microseconds), to compare and to save."""
    return {
        name: [
            row["cycle"],
            row["status"],
            row["policy"],
            row["calendar"],
            optional_us(row["started_at"]),
            optional_us(row["target_at"]),
            optional_us(row["breach_at"]),
            optional_us(row["stopped_at"]),
            float(row["business_elapsed_s"]),
        ]
        for name, row in values.items()
    }


def stored_rows(reader: Session | Connection, ticket_ids: Collection[str]) -> dict[str, Encoded]:
    """The stored metric rows of several tickets (one query)."""
    found: dict[str, Encoded] = {ticket_id: {} for ticket_id in ticket_ids}
    conn = reader.connection() if isinstance(reader, Session) else reader
    rows = read_rows(conn, _metrics_of_tickets(conn.dialect), {"ids": list(ticket_ids)})
    for ticket_id, metric, *values in rows:
        found[ticket_id][metric] = _encoded(values)
    return found


def _encoded(values: list[Any]) -> list[Any]:
    """A row's `METRIC_FIELDS` values, in order, as `encoded_metric_rows` encodes them."""
    cycle, status, policy, calendar, started_at, target_at, breach_at, stopped_at, elapsed = values
    return [
        cycle,
        status,
        policy,
        calendar,
        optional_us(started_at),
        optional_us(target_at),
        optional_us(breach_at),
        optional_us(stopped_at),
        float(elapsed),
    ]


def store_metrics(
    session: Session,
    ticket_id: str,
    state: TicketState,
    now: datetime,
    stored: Mapping[str, list[Any]] | None = None,
) -> Encoded:
    """Write only what differs from the stored rows.

    ``stored``: the rows as this service last wrote them (saved with the clock), so they
    need not be read; without it they are read. Returns the rows as now stored."""
    if stored is None:
        found = connection_of(session).execute(_METRICS_OF_TICKET, {"ticket_id": ticket_id})
        stored = encoded_metric_rows({r.metric: r._mapping for r in found})
    return store_many(session, [(ticket_id, state, stored)], now)[ticket_id]


def store_many(
    session: Session,
    items: Iterable[tuple[str, TicketState, Mapping[str, list[Any]]]],
    now: datetime,
) -> dict[str, Encoded]:
    """`store_metrics` for several tickets, each with its stored rows: at most one INSERT,
    one UPDATE (one statement on PostgreSQL, an executemany on SQLite) and one DELETE for
    all of them. The UPDATE sets the columns that differ in some row it writes (a re-plan
    moves the instants; the policy, calendar, cycle... stay)."""
    planned = plan_many(items)
    write_plan(session, planned, now)
    return planned.written


@dataclass
class MetricWrites:
    """What `store_many` writes, worked out before (`plan_many`) and written by `write_plan`."""

    added: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    changed: list[tuple[str, str, dict[str, Any], list[int]]] = field(default_factory=list)
    """(ticket, metric, values, the places in METRIC_FIELDS that differ)"""
    gone: list[tuple[str, str]] = field(default_factory=list)
    written: dict[str, Encoded] = field(default_factory=dict)
    """Each ticket's rows as they are once written."""


def plan_many(items: Iterable[tuple[str, TicketState, Mapping[str, list[Any]]]]) -> MetricWrites:
    """The rows of each ticket's state compared with its stored ones (nothing written)."""
    planned = MetricWrites()
    for ticket_id, state, stored in items:
        values = metric_values(state)
        wanted = encoded_metric_rows(values)
        planned.written[ticket_id] = wanted
        for name, row in wanted.items():
            old = stored.get(name)
            if old is None:
                planned.added.append((ticket_id, name, values[name]))
            elif old != row:
                planned.changed.append((ticket_id, name, values[name], _differing(old, row)))
        planned.gone.extend((ticket_id, name) for name in stored if name not in wanted)
    return planned


def write_plan(
    session: Session, planned: MetricWrites, now: datetime, skip: Collection[str] = ()
) -> None:
    """Write `planned`, but the rows of the tickets in `skip`."""
    added = [
        {"ticket_id": t, "metric": name, **row, "updated_at": now}
        for t, name, row in planned.added
        if t not in skip
    ]
    changed = [item for item in planned.changed if item[0] not in skip]
    gone = [item for item in planned.gone if item[0] not in skip]
    conn = connection_of(session)
    if added:
        conn.execute(insert(METRICS_TABLE), added)
    if changed:
        differ: set[int] = set()
        for *_, places in changed:
            differ.update(places)
        fields = [METRIC_FIELDS[i] for i in sorted(differ)]
        rows = [[t, name, *(row[f] for f in fields), now] for t, name, row, _ in changed]
        update_rows(
            conn, METRICS_TABLE, ("ticket_id", "metric", *fields, "updated_at"), rows, keys=2
        )
    if gone:
        table = METRICS_TABLE.c
        conn.execute(delete(METRICS_TABLE).where(tuple_(table.ticket_id, table.metric).in_(gone)))


def _differing(old: list[Any], new: list[Any]) -> list[int]:
    """The places where two encoded rows differ (all of them if the lengths do)."""
    if len(old) != len(new):
        return list(range(len(new)))
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
