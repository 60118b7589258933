"""Accounts' ledgers held in memory while an import plans a chunk of lines.

A submission, a grant or a subscription is decided by the same pure `plans` functions as a
single call, over the account's ledger as it stands after every earlier line, so the entries
are the ones single calls would append, in the same order. New entries wait in the book
(with provisional ids after the stored ones) until the chunk writes them in one statement.

Grant and subscription lines carry no id. A line is a duplicate when the ledger already
holds as many entries recording the same request (same kind, instants, quantity, price,
package) as the file has had such lines so far: a rerun, a resumed run, or the grants two
exports of adjacent windows both carry are not booked twice, while two equal purchases in
one file are both booked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.credits import plans
from sla_engine.credits.ledger import (
    GRANT,
    PURCHASE,
    SUBSCRIPTION,
    SUBSCRIPTION_END,
    Draft,
    Entry,
    Ledger,
)
from sla_engine.credits.models import CreditAccount, LedgerEntry
from sla_engine.ingest.bulk_rows import insert_rows
from sla_engine.storage.upsert import insert_ignoring_duplicates
from sla_engine.tickets import check_identifier

LEDGER_TABLE = cast(sa.Table, LedgerEntry.__table__)
LEDGER_COLUMNS = (
    "id",
    "account",
    "entry_type",
    "credit_kind",
    "quantity",
    "occurred_at",
    "expires_at",
    "lot_id",
    "ticket_id",
    "source",
    "price_per_ticket",
    "package",
    "event_id",
    "note",
    "recorded_at",
)
_IN_BATCH = 2000  # ids per `IN (...)` list

Signature = tuple[Hashable, ...]


def grant_signature(kind: str, entry: Entry | Draft) -> Signature:
    return ("grant", kind, entry.occurred_at, entry.quantity, entry.price_per_ticket, entry.package)


def subscription_signature(kind: str, start: datetime, end: datetime | None) -> Signature:
    return ("subscription", kind, start, end)


def request_signatures(entries: Sequence[Entry], lots: Ledger | None = None) -> Counter[Signature]:
    """How many times each grant and subscription request is recorded in `entries` (a
    subscription's end names its subscription, found in `entries` or in `lots`)."""
    by_id = {e.id: e for e in (lots.entries if lots is not None else ())}
    by_id.update((e.id, e) for e in entries)
    found: Counter[Signature] = Counter()
    for e in entries:
        if e.entry_type in (GRANT, PURCHASE) and e.source is not None:
            found[grant_signature(e.source, e)] += 1
        elif e.entry_type == SUBSCRIPTION:
            found[subscription_signature(str(e.source), e.occurred_at, e.expires_at)] += 1
        elif e.entry_type == SUBSCRIPTION_END and e.lot_id in by_id:
            start = by_id[e.lot_id].occurred_at
            found[subscription_signature(str(e.source), start, e.occurred_at)] += 1
    return found


@dataclass
class Book:
    """One account: its stored entries (`top_id` the last) and those planned since."""

    account: str
    ledger: Ledger
    top_id: int
    pending: list[Entry] = field(default_factory=list)
    requests: Counter[Signature] = field(default_factory=Counter)

    @classmethod
    def of(cls, account: str, entries: Sequence[Entry]) -> Book:
        top = max((e.id for e in entries), default=0)
        return cls(account, Ledger(tuple(entries)), top, [], request_signatures(entries))

    def add(self, drafts: Sequence[Draft]) -> None:
        before = len(self.ledger.entries)
        self.ledger = self.ledger.appended(drafts)
        added = self.ledger.entries[before:]
        self.pending.extend(added)
        self.requests.update(request_signatures(added, self.ledger))

    def stored(self, real_ids: dict[int, int]) -> None:
        """The pending entries were written with `real_ids` (provisional id -> stored id)."""

        def real(value: int | None) -> int | None:
            return None if value is None else real_ids.get(value, value)

        kept = [e for e in self.ledger.entries if e.id <= self.top_id]
        written = [replace(e, id=real_ids[e.id], lot_id=real(e.lot_id)) for e in self.pending]
        entries = [*kept, *written]
        self.ledger = Ledger(tuple(entries))
        self.top_id = max((e.id for e in entries), default=0)
        self.pending = []


class CreditBooks:
    """The books of the accounts a chunk names, loaded under their locks, cached between
    chunks while nobody else appends to them."""

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.loaded: set[str] = set()
        # the accounts whose book was handed out since the last write: only they can hold
        # pending entries (a write scanning every cached book cost more than the write
        # itself once a run had seen a few thousand accounts)
        self.touched: dict[str, None] = {}

    def forget(self) -> None:
        self.books.clear()
        self.loaded.clear()
        self.touched.clear()

    def drop(self, account: str) -> None:
        """Forget one account's book (a single call appended to its ledger)."""
        self.books.pop(account, None)
        self.loaded.discard(account)
        self.touched.pop(account, None)

    def begin_chunk(self) -> None:
        self.loaded.clear()

    def load(self, session: Session, accounts: Iterable[str], now: datetime) -> None:
        """Lock `accounts` and make sure their books match the stored ledger."""
        wanted = sorted(set(accounts) - self.loaded)
        if not wanted:
            return
        # an account with a book has its row: inserted by this run in a chunk committed (a
        # rolled-back chunk forgets the books) or in this one; account rows are never deleted
        missing = [{"account": a, "created_at": now} for a in wanted if a not in self.books]
        if missing:
            insert_ignoring_duplicates(session, CreditAccount, missing, index_elements=["account"])
        tops: dict[str, int] = {}
        for part in _batches(wanted):
            session.execute(
                sa.select(CreditAccount.account)
                .where(CreditAccount.account.in_(part))
                .order_by(CreditAccount.account)
                .with_for_update()
            ).all()
            tops.update(
                (account, top)
                for account, top in session.execute(
                    sa.select(LedgerEntry.account, sa.func.max(LedgerEntry.id))
                    .where(LedgerEntry.account.in_(part))
                    .group_by(LedgerEntry.account)
                ).all()
            )
        stale = [
            a
            for a in wanted
            if a not in self.books
            or self.books[a].pending
            or self.books[a].top_id != tops.get(a, 0)
        ]
        entries: dict[str, list[Entry]] = {a: [] for a in stale}
        for part in _batches(stale):
            rows = session.scalars(
                sa.select(LedgerEntry)
                .where(LedgerEntry.account.in_(part))
                .order_by(LedgerEntry.account, LedgerEntry.id)
            )
            for row in rows:
                entries[row.account].append(row.to_entry())
        for account in stale:
            self.books[account] = Book.of(account, entries[account])
        self.loaded.update(wanted)

    def book(self, account: str) -> Book:
        self.touched[account] = None
        return self.books[account]

    def write(self, session: Session, now: datetime, accounts: Sequence[str] | None = None) -> int:
        """Append every pending entry (or those of `accounts`) in one statement; returns how
        many. Their ids are taken first (`_new_ids`), in planning order, so lots planned in
        this chunk are referred to by their final ids and nothing is read back."""
        if accounts is None:
            names = list(self.touched)
            self.touched.clear()
        else:
            names = [a for a in accounts if a in self.touched]
            for a in names:
                del self.touched[a]
        touched = [self.books[a] for a in names if a in self.books]
        pending = [(b, e) for b in touched for e in b.pending]
        if not pending:
            return 0
        ids = iter(_new_ids(session, len(pending)))
        real: dict[str, dict[int, int]] = {}
        for book, e in pending:
            real.setdefault(book.account, {})[e.id] = next(ids)
        rows = []
        for book, e in pending:
            mapping = real[book.account]
            lot = e.lot_id
            rows.append(
                (
                    mapping[e.id],
                    book.account,
                    e.entry_type,
                    e.credit_kind,
                    e.quantity,
                    e.occurred_at,
                    e.expires_at,
                    mapping.get(lot, lot) if lot is not None and lot > book.top_id else lot,
                    e.ticket_id,
                    e.source,
                    e.price_per_ticket,
                    e.package,
                    None,
                    e.note,
                    now,
                )
            )
        insert_rows(session, LEDGER_TABLE, LEDGER_COLUMNS, rows)
        for book in {id(b): b for b, _ in pending}.values():
            book.stored(real[book.account])
        return len(pending)


def _new_ids(session: Session, count: int) -> list[int]:
    """`count` ledger ids, ascending, no other writer can take."""
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(
            sa.text(
                "SELECT nextval(pg_get_serial_sequence('credit_ledger', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        ).all()
        return sorted(ids)
    # SQLite: this transaction began IMMEDIATE and holds the database's write lock, so no
    # other connection inserts before it ends; the ledger is append-only (no id is reused).
    top = session.scalar(sa.select(sa.func.max(LEDGER_TABLE.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


# --- decisions over a book (the same checks and plans as the credit service) ------------------


def plan_grant(book: Book, line: Any) -> tuple[Signature, Draft]:
    if line.package is not None:
        check_identifier(line.package, "package", max_length=100)
    draft = plans.plan_grant(
        line.kind,
        line.occurred_at,
        quantity=line.quantity,
        price_per_ticket=line.price_per_ticket,
        package=line.package,
    )
    return grant_signature(line.kind, draft), draft


def plan_subscription(book: Book, line: Any) -> tuple[Signature, Draft]:
    draft = plans.plan_subscription(book.ledger, line.kind, line.start, line.end)
    return subscription_signature(line.kind, line.start, line.end), draft


def _batches(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _IN_BATCH):
        yield items[i : i + _IN_BATCH]
