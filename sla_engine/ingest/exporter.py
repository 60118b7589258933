"""`sla-engine export`: tickets created in [from, to), their events, and the grants and
subscriptions of their accounts, as import lines.

The order is chosen so that importing the file takes every credit decision as it was taken:
an account's submissions, grants and remedies come in the order the ledger recorded them (by
entry id), and each ticket's events follow its ticket line in arrival order. A ticket is a
group (its line and its events) placed where its credit was spent (its first ledger entry);
an event that moved credits (a verified bug, a refunded emergency, a split opening a ticket)
starts a new group placed where its own entry was recorded. Tickets without an account sit
by arrival time. A ticket opened by an exported split gets no ticket line: the split opens it.

Instants are written in UTC, except where a credit's expiry (12 calendar months after its
purchase, counted in the purchase's own offset) needs the offset the purchase was made in:
the one that gives the stored expiry is written, so the re-import books the same expiry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.credits.ledger import (
    CONSUMPTION,
    COVERED_BY_SUBSCRIPTION,
    EMERGENCY_PURCHASE,
    GRANT,
    PURCHASE,
    SUBSCRIPTION,
    SUBSCRIPTION_END,
    TICKET_PURCHASE,
    expiry_of,
)
from sla_engine.credits.models import LedgerEntry
from sla_engine.storage.models import Ticket, TicketEvent

BATCH = 1000
_SUBMISSIONS = (CONSUMPTION, COVERED_BY_SUBSCRIPTION, EMERGENCY_PURCHASE)


@dataclass(order=True)
class _Item:
    """One group of lines, sorted by where the engine recorded it."""

    # (recorded_at, 0, ledger entry id, 1 for a split's child, "") for what the ledger
    # places; (received_at, 1, 1 for a split's child, 0, ticket id) for the other tickets
    key: tuple[datetime, int, int, int, str]
    ticket_id: str = field(compare=False, default="")
    from_seq: int = field(compare=False, default=0)  # events with from_seq <= seq < to_seq
    to_seq: int | None = field(compare=False, default=None)
    with_ticket: bool = field(compare=False, default=False)
    line: dict[str, Any] | None = field(compare=False, default=None)


def export_lines(
    sessions: sessionmaker[Session], start: datetime | None, end: datetime | None
) -> Iterator[str]:
    """The export, one JSON line at a time (without the newline)."""
    with sessions() as session:
        items, expiries = _plan(session, start, end)
        for part in _batches(items, BATCH):
            yield from _emit(session, part, expiries)


@dataclass
class _Ledgers:
    """What the accounts' ledgers say about the order and the expiries of the lines."""

    lines: list[_Item] = field(default_factory=list)
    anchors: dict[str, Where] = field(default_factory=dict)  # ticket -> its submission
    event_anchors: dict[tuple[str, str], Where] = field(default_factory=dict)
    expiries: dict[tuple[str, str], datetime] = field(default_factory=dict)


Where = tuple[datetime, int]  # (recorded_at, entry id)


def _plan(
    session: Session, start: datetime | None, end: datetime | None
) -> tuple[list[_Item], dict[tuple[str, str], datetime]]:
    tickets = _window(session, start, end)
    children = _split_children(session, sorted(tickets))
    ledgers = _read_ledgers(session, sorted({a for a, _ in tickets.values() if a is not None}))
    for child, (parent, event_id) in children.items():
        if child in ledgers.anchors and parent in tickets:
            ledgers.event_anchors.setdefault((parent, event_id), ledgers.anchors[child])
            if (child, "") in ledgers.expiries:
                ledgers.expiries[(parent, event_id)] = ledgers.expiries[(child, "")]
    cuts = _anchored_events(session, ledgers, set(tickets))
    items = list(ledgers.lines)
    for ticket_id, (_, received) in tickets.items():
        first = ledgers.anchors.get(ticket_id)
        split = children.get(ticket_id)
        with_ticket = not (split is not None and split[0] in tickets)
        # a split's child shares the split's ledger entry: it goes after the split
        after_split = 0 if split is None else 1
        if first:
            key = (first[0], 0, first[1], after_split, "")
        else:
            key = (received, 1, after_split, 0, ticket_id)
        start_seq = 0
        for seq, (when, entry_id) in cuts.get(ticket_id, ()):
            items.append(_Item(key, ticket_id, start_seq, seq, with_ticket))
            with_ticket = False
            key, start_seq = (when, 0, entry_id, 0, ""), seq
        items.append(_Item(key, ticket_id, start_seq, None, with_ticket))
    items.sort()
    return items, ledgers.expiries


def _window(
    session: Session, start: datetime | None, end: datetime | None
) -> dict[str, tuple[str | None, datetime]]:
    """The tickets created in [start, end): id -> (account, received_at)."""
    query = sa.select(Ticket.id, Ticket.account, Ticket.received_at).order_by(
        Ticket.received_at, Ticket.id
    )
    if start is not None:
        query = query.where(Ticket.created_at >= start)
    if end is not None:
        query = query.where(Ticket.created_at < end)
    return {tid: (account, received) for tid, account, received in session.execute(query)}


def _split_children(session: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Tickets opened by a split of one of `ids`: child -> (parent, split event id)."""
    children: dict[str, tuple[str, str]] = {}
    for part in _batches(ids, BATCH):
        rows = session.execute(
            sa.select(TicketEvent.ticket_id, TicketEvent.event_id, TicketEvent.data).where(
                TicketEvent.ticket_id.in_(part), TicketEvent.type == "split"
            )
        )
        for parent, event_id, data in rows:
            child = (data or {}).get("new_ticket_id")
            if isinstance(child, str):
                children[child] = (parent, event_id)
    return children


def _read_ledgers(session: Session, accounts: Sequence[str]) -> _Ledgers:
    found = _Ledgers()
    lots: dict[int, Any] = {}
    for part in _batches(accounts, BATCH):
        entries = session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.account.in_(part)).order_by(LedgerEntry.id)
        )
        for e in entries:
            lots[e.id] = e
            line = _ledger_line(e, lots)
            if line is not None:
                found.lines.append(_Item((e.recorded_at, 0, e.id, 0, ""), line=line))
            if e.ticket_id is not None:
                _note_ticket_entry(found, e)
    return found


def _note_ticket_entry(found: _Ledgers, e: Any) -> None:
    where = (e.recorded_at, e.id)
    if e.event_id is not None:
        found.event_anchors.setdefault((e.ticket_id, e.event_id), where)
        if e.expires_at is not None:
            found.expiries[(e.ticket_id, e.event_id)] = e.expires_at
    elif e.entry_type in _SUBMISSIONS:
        found.anchors.setdefault(e.ticket_id, where)
        if e.entry_type == EMERGENCY_PURCHASE and e.expires_at is not None:
            found.expiries[(e.ticket_id, "")] = e.expires_at


def _anchored_events(
    session: Session, ledgers: _Ledgers, tickets: set[str]
) -> dict[str, list[tuple[int, Where]]]:
    """For each ticket, the seq of each event that moved credits, with its entry."""
    cuts: dict[str, list[tuple[int, Where]]] = {}
    wanted = sorted({t for t, _ in ledgers.event_anchors} & tickets)
    for part in _batches(wanted, BATCH):
        rows = session.execute(
            sa.select(TicketEvent.ticket_id, TicketEvent.event_id, TicketEvent.seq)
            .where(TicketEvent.ticket_id.in_(part))
            .order_by(TicketEvent.seq)
        )
        for ticket_id, event_id, seq in rows:
            where = ledgers.event_anchors.get((ticket_id, event_id))
            if where is not None:
                cuts.setdefault(ticket_id, []).append((seq, where))
    return cuts


def _emit(
    session: Session, items: Sequence[_Item], expiries: dict[tuple[str, str], datetime]
) -> Iterator[str]:
    ids = sorted({item.ticket_id for item in items if item.ticket_id})
    rows: dict[str, Ticket] = {}
    events: dict[str, list[Any]] = {}
    for part in _batches(ids, BATCH):
        for ticket in session.scalars(sa.select(Ticket).where(Ticket.id.in_(part))):
            rows[ticket.id] = ticket
        for row in session.execute(
            sa.select(
                TicketEvent.ticket_id,
                TicketEvent.seq,
                TicketEvent.event_id,
                TicketEvent.type,
                TicketEvent.occurred_at,
                TicketEvent.data,
            )
            .where(TicketEvent.ticket_id.in_(part))
            .order_by(TicketEvent.seq)
        ):
            events.setdefault(row.ticket_id, []).append(row)
    for item in items:
        if item.line is not None:
            yield _dump(item.line)
            continue
        ticket = rows[item.ticket_id]
        if item.with_ticket:
            yield _dump(_ticket_line(ticket, expiries.get((ticket.id, ""))))
        for row in events.get(item.ticket_id, ()):
            if row.seq < item.from_seq or (item.to_seq is not None and row.seq >= item.to_seq):
                continue
            expiry = expiries.get((item.ticket_id, row.event_id))
            yield _dump(
                {
                    **(row.data or {}),
                    "kind": "event",
                    "ticket_id": item.ticket_id,
                    "event_id": row.event_id,
                    "type": row.type,
                    "occurred_at": instant_text(row.occurred_at, expiry),
                }
            )


def _ticket_line(ticket: Ticket, expiry: datetime | None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "kind": "ticket",
        "id": ticket.id,
        "policy": ticket.policy,
        "created_at": instant_text(ticket.created_at, expiry),
    }
    for name in ("account", "product", "version"):
        value = getattr(ticket, name)
        if value is not None:
            line[name] = value
    calendar = getattr(ticket, "initial_calendar", None)
    if calendar is not None:
        line["calendar"] = calendar
    return line


def _ledger_line(entry: Any, lots: dict[int, Any]) -> dict[str, Any] | None:
    """The grant or subscription request that recorded `entry` (None for other entries)."""
    account = entry.account
    if entry.entry_type in (GRANT, PURCHASE):
        line: dict[str, Any] = {
            "kind": "grant",
            "account": account,
            "type": entry.source,
            "occurred_at": instant_text(entry.occurred_at, entry.expires_at),
        }
        if entry.source == TICKET_PURCHASE:
            line["quantity"] = entry.quantity
        if entry.price_per_ticket is not None:
            line["price_per_ticket"] = entry.price_per_ticket
        if entry.package is not None:
            line["package"] = entry.package
        return line
    if entry.entry_type == SUBSCRIPTION:
        line = {
            "kind": "subscription",
            "account": account,
            "type": entry.source,
            "start": instant_text(entry.occurred_at),
        }
        if entry.expires_at is not None:
            line["end"] = instant_text(entry.expires_at)
        return line
    if entry.entry_type == SUBSCRIPTION_END and entry.lot_id in lots:
        return {
            "kind": "subscription",
            "account": account,
            "type": entry.source,
            "start": instant_text(lots[entry.lot_id].occurred_at),
            "end": instant_text(entry.occurred_at),
        }
    return None


def instant_text(value: datetime, expiry: datetime | None = None) -> str:
    """`value` as ISO 8601 in UTC, or in the offset whose 12-months-later is `expiry`."""
    value = value.astimezone(UTC)
    if expiry is None or expiry_of(value) == expiry:
        return value.isoformat()
    for quarter_hours in range(-14 * 4, 14 * 4 + 1):
        zone = timezone(timedelta(minutes=15 * quarter_hours))
        local = value.astimezone(zone)
        if expiry_of(local) == expiry:
            return local.isoformat()
    return value.isoformat()


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _batches(items: Sequence[Any] | Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
