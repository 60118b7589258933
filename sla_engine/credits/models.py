"""Credit tables: one lock row per account and the append-only credit ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sla_engine.credits.ledger import Entry
from sla_engine.storage.models import ID_LENGTH, NAME_LENGTH, Base


class CreditAccount(Base):
    """An account known to the ledger; its row is locked while a credit is decided."""

    __tablename__ = "credit_accounts"

    account: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime]


class LedgerEntry(Base):
    """One append-only ledger entry (never updated or deleted; balances derive from these)."""

    __tablename__ = "credit_ledger"
    __table_args__ = (Index(None, "account", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(ForeignKey("credit_accounts.account"))
    entry_type: Mapped[str] = mapped_column(String(40))
    credit_kind: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("credit_ledger.id"))
    ticket_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    source: Mapped[str | None] = mapped_column(String(40))
    price_per_ticket: Mapped[str | None] = mapped_column(String(40))
    package: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime]

    def to_entry(self) -> Entry:
        return Entry(
            id=self.id,
            entry_type=self.entry_type,
            occurred_at=self.occurred_at,
            quantity=self.quantity,
            credit_kind=self.credit_kind,
            expires_at=self.expires_at,
            lot_id=self.lot_id,
            ticket_id=self.ticket_id,
            source=self.source,
            price_per_ticket=self.price_per_ticket,
            package=self.package,
            note=self.note,
        )
