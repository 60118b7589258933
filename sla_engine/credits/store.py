"""All credit SQL: the account lock, reading and appending ledger entries, a ticket's log.

Every function works inside the caller's transaction. Decisions are not taken here: the
pure `plans` module decides over the `Ledger` read by `load_ledger`, under the account lock.
The lock serialises two submissions racing for the last credit: SQLite transactions begin
with `BEGIN IMMEDIATE`; on PostgreSQL the account row is created with `INSERT ... ON CONFLICT
DO NOTHING` and locked with `SELECT ... FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sla_engine.credits.ledger import LOT_TYPES, Draft, Ledger, resolve_lot
from sla_engine.credits.models import CreditAccount, LedgerEntry
from sla_engine.credits.rsaa import LogEvent
from sla_engine.storage.models import Ticket, TicketEvent
from sla_engine.storage.upsert import insert_ignoring_duplicates


def lock_account(session: Session, account: str, now: datetime) -> None:
    """Create the account's row if needed and hold its lock until the transaction ends."""
    insert_ignoring_duplicates(
        session, CreditAccount, {"account": account, "created_at": now}, index_elements=["account"]
    )
    session.execute(
        select(CreditAccount.account).where(CreditAccount.account == account).with_for_update()
    )


def ledger_rows(session: Session, account: str) -> list[LedgerEntry]:
    """The account's entries in the order recorded."""
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
        )
    )


def load_ledger(session: Session, account: str) -> Ledger:
    return Ledger(tuple(row.to_entry() for row in ledger_rows(session, account)))


def append(
    session: Session,
    account: str,
    drafts: Sequence[Draft],
    now: datetime,
    *,
    event_id: str | None = None,
) -> list[LedgerEntry]:
    """Append `drafts` in order (a draft may refer to an earlier one as its lot)."""
    ids: dict[int, int] = {}
    rows = []
    for draft in drafts:
        row = LedgerEntry(
            account=account,
            entry_type=draft.entry_type,
            credit_kind=draft.credit_kind,
            quantity=draft.quantity,
            occurred_at=draft.occurred_at,
            expires_at=draft.expires_at,
            lot_id=resolve_lot(draft, ids),
            ticket_id=draft.ticket_id,
            source=draft.source,
            price_per_ticket=draft.price_per_ticket,
            package=draft.package,
            event_id=event_id,
            note=draft.note,
            recorded_at=now,
        )
        session.add(row)
        session.flush()
        ids[id(draft)] = row.id
        rows.append(row)
    return rows


def accounts_with_expired_lots(session: Session, now: datetime) -> list[str]:
    """Accounts holding a lot whose expiry is due by `now` (booked or not)."""
    return list(
        session.scalars(
            select(LedgerEntry.account)
            .where(LedgerEntry.entry_type.in_(sorted(LOT_TYPES)), LedgerEntry.expires_at <= now)
            .distinct()
            .order_by(LedgerEntry.account)
        )
    )


def ticket_exists(session: Session, ticket_id: str) -> bool:
    return session.get(Ticket, ticket_id) is not None


def ticket_log(session: Session, ticket_id: str) -> list[LogEvent]:
    """The ticket's events in arrival order, as the RSAA replay reads them."""
    rows = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.seq)
    )
    return [
        LogEvent(r.event_id, r.type, r.occurred_at, r.seq, dict(r.data), r.received_at)
        for r in rows
    ]
