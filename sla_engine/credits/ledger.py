"""PURE: support credits as an append-only ledger: entries, lots, balances and expiry.

A ledger is a sequence of entries. Entries that add credits (grants, purchases, emergency
purchases, credit-backs) are *lots*: each has a kind (`email` or `emergency`), a quantity, a
`purchased_at` and an `expires_at` 12 calendar months later. A consumption draws one credit
from one lot and names it. Balances are derived from the entries at any instant; nothing here
depends on the housekeeping job's `expiry` entries, which only book what expiry already means.

The decisions taken over a ledger (what a grant, a submission or a remedy appends) are in
`plans.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sla_engine.json_types import JsonObject

EMAIL = "email"
EMERGENCY = "emergency"
CREDIT_KINDS = (EMAIL, EMERGENCY)

# Grant kinds of the seed policy and the email credits each one adds.
GRANT_QUANTITIES: Mapping[str, int] = {
    "license_purchase": 2,
    "renewal": 1,
    "reinstatement": 1,
    "bundle_purchase": 2,
}
TICKET_PURCHASE = "ticket_purchase"
GRANT_KINDS = (*GRANT_QUANTITIES, TICKET_PURCHASE)
MAX_PURCHASE_QUANTITY = 10_000

# Entry types.
GRANT = "grant"
PURCHASE = "purchase"
EMERGENCY_PURCHASE = "emergency_purchase"
CREDIT_BACK = "credit_back"
CONSUMPTION = "consumption"
REFUND = "refund"
EXPIRY = "expiry"
EXPIRY_REVERSAL = "expiry_reversal"
SUBSCRIPTION = "subscription"
SUBSCRIPTION_END = "subscription_end"
COVERED_BY_SUBSCRIPTION = "covered_by_subscription"
LOT_TYPES = frozenset({GRANT, PURCHASE, EMERGENCY_PURCHASE, CREDIT_BACK})
ENTRY_TYPES = (
    GRANT,
    PURCHASE,
    EMERGENCY_PURCHASE,
    CREDIT_BACK,
    CONSUMPTION,
    REFUND,
    EXPIRY,
    EXPIRY_REVERSAL,
    SUBSCRIPTION,
    SUBSCRIPTION_END,
    COVERED_BY_SUBSCRIPTION,
)
SUBSCRIPTION_KINDS = ("hosted",)
REMEDIES = ("refund", "credit")


def expiry_of(purchased_at: datetime) -> datetime:
    """12 calendar months after `purchased_at`, in its own zone; 29 February -> 28 February."""
    day = 28 if (purchased_at.month, purchased_at.day) == (2, 29) else purchased_at.day
    return purchased_at.replace(year=purchased_at.year + 1, day=day)


@dataclass(frozen=True)
class Draft:
    """An entry to append. `lot` names the lot it draws on: a stored id or an earlier draft."""

    entry_type: str
    occurred_at: datetime
    quantity: int = 0
    credit_kind: str | None = None
    expires_at: datetime | None = None
    lot: int | Draft | None = None
    ticket_id: str | None = None
    source: str | None = None
    price_per_ticket: str | None = None
    package: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Entry:
    """A stored ledger entry."""

    id: int
    entry_type: str
    occurred_at: datetime
    quantity: int = 0
    credit_kind: str | None = None
    expires_at: datetime | None = None
    lot_id: int | None = None
    ticket_id: str | None = None
    source: str | None = None
    price_per_ticket: str | None = None
    package: str | None = None
    note: str | None = None

    @property
    def is_lot(self) -> bool:
        return self.entry_type in LOT_TYPES

    def valid_at(self, at: datetime) -> bool:
        """A lot can be used at `at`: bought by then and not yet expired."""
        assert self.expires_at is not None
        return self.occurred_at <= at < self.expires_at


@dataclass(frozen=True)
class LotBalance:
    lot: Entry
    remaining: int

    def to_json(self) -> JsonObject:
        assert self.lot.expires_at is not None and self.lot.credit_kind is not None
        return {
            "lot_id": self.lot.id,
            "kind": self.lot.credit_kind,
            "source": self.lot.source,
            "remaining": self.remaining,
            "purchased_at": self.lot.occurred_at.isoformat(),
            "expires_at": self.lot.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class Balance:
    """What an account holds at one instant."""

    at: datetime
    lots: tuple[LotBalance, ...]
    unlimited_email: bool

    def of(self, kind: str) -> int:
        return sum(lot.remaining for lot in self.lots if lot.lot.credit_kind == kind)

    def to_json(self) -> JsonObject:
        return {
            "at": self.at.isoformat(),
            EMAIL: self.of(EMAIL),
            EMERGENCY: self.of(EMERGENCY),
            "unlimited_email": self.unlimited_email,
            "lots": [lot.to_json() for lot in self.lots if lot.remaining > 0],
        }


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class Ledger:
    """One account's entries, in the order they were recorded."""

    entries: tuple[Entry, ...] = ()
    _by_lot: dict[int, list[Entry]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.lot_id is not None:
                self._by_lot.setdefault(entry.lot_id, []).append(entry)

    # -- lots and balances -------------------------------------------------------------------
    def lots(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.is_lot]

    def remaining(self, lot: Entry, at: datetime) -> int:
        """Credits of `lot` left at `at`: its quantity less the consumptions up to then."""
        drawn = sum(
            e.quantity
            for e in self._by_lot.get(lot.id, ())
            if e.entry_type == CONSUMPTION and e.occurred_at <= at
        )
        return lot.quantity + drawn

    def uncommitted(self, lot: Entry) -> int:
        """Credits of `lot` no consumption has claimed, at any instant (what may still be used).

        A ticket judged at an earlier `created_at` must not take a credit that a later ticket
        already used, or the later balance would go negative.
        """
        drawn = sum(e.quantity for e in self._by_lot.get(lot.id, ()) if e.entry_type == CONSUMPTION)
        return lot.quantity + drawn

    def balance(self, at: datetime) -> Balance:
        valid = sorted((lot for lot in self.lots() if lot.valid_at(at)), key=_consumption_order)
        return Balance(
            at=at,
            lots=tuple(LotBalance(lot, self.remaining(lot, at)) for lot in valid),
            unlimited_email=self.covered_by_subscription(at),
        )

    def lot_for(self, kind: str, at: datetime) -> Entry | None:
        """The lot a consumption at `at` draws on: usable then, expiring first."""
        usable = [
            lot
            for lot in self.lots()
            if lot.credit_kind == kind and lot.valid_at(at) and self.uncommitted(lot) > 0
        ]
        return min(usable, key=_consumption_order, default=None)

    # -- subscriptions -----------------------------------------------------------------------
    def subscriptions(self) -> list[tuple[Entry, Period]]:
        periods = []
        for entry in self.entries:
            if entry.entry_type != SUBSCRIPTION:
                continue
            end = entry.expires_at
            for ending in self._by_lot.get(entry.id, ()):
                if ending.entry_type == SUBSCRIPTION_END and (
                    end is None or ending.occurred_at < end
                ):
                    end = ending.occurred_at
            periods.append((entry, Period(entry.occurred_at, end)))
        return periods

    def covered_by_subscription(self, at: datetime) -> bool:
        return any(period.covers(at) for _, period in self.subscriptions())

    # -- tickets -------------------------------------------------------------------------------
    def ticket_entries(self, ticket_id: str) -> list[Entry]:
        return [entry for entry in self.entries if entry.ticket_id == ticket_id]

    def consumption_of(self, ticket_id: str) -> Entry | None:
        return next(
            (e for e in self.ticket_entries(ticket_id) if e.entry_type == CONSUMPTION), None
        )

    def lot(self, lot_id: int) -> Entry:
        return next(entry for entry in self.entries if entry.id == lot_id)

    # -- expiry --------------------------------------------------------------------------------
    def expiry_adjustment(self, lot: Entry, now: datetime) -> Draft | None:
        """The entry that books `lot`'s expiry as of `now`, if the booked amount is not right.

        Expired credits are what no consumption claimed. A late ticket may still claim a credit
        of a lot whose expiry was already booked (it is judged at its `created_at`); the
        difference is then booked back as an `expiry_reversal`.
        """
        assert lot.expires_at is not None
        if lot.expires_at > now:
            return None
        booked = -sum(
            e.quantity
            for e in self._by_lot.get(lot.id, ())
            if e.entry_type in (EXPIRY, EXPIRY_REVERSAL)
        )
        due = self.uncommitted(lot) - booked
        if due == 0:
            return None
        return Draft(
            EXPIRY if due > 0 else EXPIRY_REVERSAL,
            occurred_at=lot.expires_at,
            quantity=-due,
            credit_kind=lot.credit_kind,
            lot=lot.id,
        )

    def expirations_due(self, now: datetime) -> list[Draft]:
        return [d for lot in self.lots() if (d := self.expiry_adjustment(lot, now)) is not None]

    def total(self, at: datetime) -> int:
        """The plain sum of every lot-related entry that occurred by `at`."""
        return sum(
            e.quantity
            for e in self.entries
            if (e.is_lot or e.lot_id is not None)
            and e.entry_type != SUBSCRIPTION_END
            and e.occurred_at <= at
        )

    # -- appending -----------------------------------------------------------------------------
    def appended(self, drafts: Sequence[Draft]) -> Ledger:
        """This ledger with `drafts` appended, numbered after the last entry (for pure use)."""
        next_id = max((e.id for e in self.entries), default=0) + 1
        ids: dict[int, int] = {}
        added = []
        for draft in drafts:
            ids[id(draft)] = next_id
            added.append(to_entry(draft, next_id, resolve_lot(draft, ids)))
            next_id += 1
        return Ledger(self.entries + tuple(added))


def resolve_lot(draft: Draft, ids: Mapping[int, int]) -> int | None:
    """The stored id of the lot a draft refers to (`ids` maps earlier drafts to their ids)."""
    if isinstance(draft.lot, Draft):
        return ids[id(draft.lot)]
    return draft.lot


def to_entry(draft: Draft, entry_id: int, lot_id: int | None) -> Entry:
    return Entry(
        id=entry_id,
        entry_type=draft.entry_type,
        occurred_at=draft.occurred_at,
        quantity=draft.quantity,
        credit_kind=draft.credit_kind,
        expires_at=draft.expires_at,
        lot_id=lot_id,
        ticket_id=draft.ticket_id,
        source=draft.source,
        price_per_ticket=draft.price_per_ticket,
        package=draft.package,
        note=draft.note,
    )


def _consumption_order(lot: Entry) -> tuple[datetime, datetime, int]:
    assert lot.expires_at is not None
    return (lot.expires_at, lot.occurred_at, lot.id)
