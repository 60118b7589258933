"""PURE: the decisions taken over a credit ledger: what each request appends, or why not.

Each `plan_*` function takes a ledger (see `ledger.py`) and a request and returns the entries
to append (drafts), or raises the error that refuses the request (`InputError`, `Conflict`,
`PaymentRequired`). The credit service appends them in one transaction, under the account lock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sla_engine.credits.ledger import (
    CONSUMPTION,
    COVERED_BY_SUBSCRIPTION,
    CREDIT_BACK,
    EMAIL,
    EMERGENCY,
    EMERGENCY_PURCHASE,
    EXPIRY_REVERSAL,
    GRANT,
    GRANT_KINDS,
    GRANT_QUANTITIES,
    MAX_PURCHASE_QUANTITY,
    PURCHASE,
    REFUND,
    REMEDIES,
    SUBSCRIPTION,
    SUBSCRIPTION_END,
    SUBSCRIPTION_KINDS,
    TICKET_PURCHASE,
    Draft,
    Entry,
    Ledger,
    expiry_of,
)
from sla_engine.errors import Conflict, InputError, PaymentRequired


def plan_grant(
    kind: str,
    occurred_at: datetime,
    *,
    quantity: int | None = None,
    price_per_ticket: str | Decimal | float | int | None = None,
    package: str | None = None,
) -> Draft:
    """A grant or a ticket purchase: one lot of email credits."""
    if kind not in GRANT_KINDS:
        raise InputError(
            f"kind {kind!r} is not a grant kind (one of {', '.join(GRANT_KINDS)})",
            field="kind",
            value=kind,
        )
    if kind == TICKET_PURCHASE:
        if quantity is None:
            quantity = 1
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InputError("quantity must be a whole number", field="quantity", value=quantity)
        if not 1 <= quantity <= MAX_PURCHASE_QUANTITY:
            raise InputError(
                f"quantity {quantity} must be between 1 and {MAX_PURCHASE_QUANTITY}",
                field="quantity",
                value=quantity,
            )
        price = _price(price_per_ticket)
        entry_type, source = PURCHASE, TICKET_PURCHASE
    else:
        fixed = GRANT_QUANTITIES[kind]
        if quantity is not None and quantity != fixed:
            raise InputError(
                f"a {kind} always adds {fixed} email credit(s); quantity {quantity!r} "
                "applies to ticket_purchase only",
                field="quantity",
                value=quantity,
            )
        if price_per_ticket is not None or package is not None:
            bad_field = "price_per_ticket" if price_per_ticket is not None else "package"
            raise InputError(
                f"{bad_field} applies to ticket_purchase only, not to {kind}",
                field=bad_field,
                value=price_per_ticket if price_per_ticket is not None else package,
            )
        quantity, price, entry_type, source = fixed, None, GRANT, kind
    return Draft(
        entry_type,
        occurred_at=occurred_at,
        quantity=quantity,
        credit_kind=EMAIL,
        expires_at=expiry_of(occurred_at),
        source=source,
        price_per_ticket=price,
        package=package,
    )


def _price(value: str | Decimal | float | int | None) -> str | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InputError(
            f"price_per_ticket {value!r} is not a number", field="price_per_ticket", value=value
        ) from None
    if not price.is_finite() or price < 0 or price > Decimal("1000000"):
        raise InputError(
            f"price_per_ticket {value!r} must be between 0 and 1000000",
            field="price_per_ticket",
            value=value,
        )
    if price != price.quantize(Decimal("0.0001")):
        raise InputError(
            f"price_per_ticket {value!r} has more than 4 decimal places",
            field="price_per_ticket",
            value=value,
        )
    return format(price, "f")


def plan_subscription(ledger: Ledger, kind: str, start: datetime, end: datetime | None) -> Draft:
    """A hosted-service subscription; giving an end to an open one with the same start ends it."""
    if kind not in SUBSCRIPTION_KINDS:
        raise InputError(
            f"kind {kind!r} is not a subscription kind (only 'hosted')", field="kind", value=kind
        )
    if end is not None and end <= start:
        raise InputError(
            f"end {end.isoformat()} must be after start {start.isoformat()}",
            field="end",
            value=end.isoformat(),
        )
    for entry, period in ledger.subscriptions():
        if period.start == start and period.end is None and end is not None:
            return Draft(SUBSCRIPTION_END, occurred_at=end, lot=entry.id, source=kind)
    return Draft(SUBSCRIPTION, occurred_at=start, expires_at=end, source=kind)


def plan_submission(
    ledger: Ledger,
    account: str,
    ticket_id: str,
    policy: str,
    created_at: datetime,
    now: datetime,
    *,
    note: str | None = None,
) -> list[Draft]:
    """What a ticket submission appends: a consumption (emergency: a purchase too) or a
    zero entry when a hosted subscription covers it; PaymentRequired when nothing can pay."""
    if policy == EMERGENCY:
        lot = ledger.lot_for(EMERGENCY, created_at)
        if lot is None:
            bought = Draft(
                EMERGENCY_PURCHASE,
                occurred_at=created_at,
                quantity=1,
                credit_kind=EMERGENCY,
                expires_at=expiry_of(created_at),
                source="emergency_ticket",
                ticket_id=ticket_id,
            )
            return [bought, _consume(bought, EMERGENCY, ticket_id, created_at, note)]
        return _consume_stored(ledger, lot, ticket_id, created_at, now, note)
    if ledger.covered_by_subscription(created_at):
        return [
            Draft(COVERED_BY_SUBSCRIPTION, occurred_at=created_at, ticket_id=ticket_id, note=note)
        ]
    lot = ledger.lot_for(EMAIL, created_at)
    if lot is None:
        raise PaymentRequired(
            f"No support ticket credits available on account {account} at "
            f"{created_at.isoformat()}: purchase a ticket to submit.",
            field="account",
            value=account,
        )
    return _consume_stored(ledger, lot, ticket_id, created_at, now, note)


def _consume(lot: int | Draft, kind: str, ticket_id: str, at: datetime, note: str | None) -> Draft:
    return Draft(
        CONSUMPTION,
        occurred_at=at,
        quantity=-1,
        credit_kind=kind,
        lot=lot,
        ticket_id=ticket_id,
        note=note,
    )


def _consume_stored(
    ledger: Ledger, lot: Entry, ticket_id: str, at: datetime, now: datetime, note: str | None
) -> list[Draft]:
    assert lot.credit_kind is not None
    drafts = [_consume(lot.id, lot.credit_kind, ticket_id, at, note)]
    after = ledger.appended(drafts)
    adjustment = after.expiry_adjustment(after.lot(lot.id), now)
    if adjustment is not None and adjustment.entry_type == EXPIRY_REVERSAL:
        drafts.append(adjustment)
    return drafts


def _already_remedied(ledger: Ledger, ticket_id: str) -> Entry | None:
    return next(
        (e for e in ledger.ticket_entries(ticket_id) if e.entry_type in (REFUND, CREDIT_BACK)),
        None,
    )


def plan_verified_bug(
    ledger: Ledger, ticket_id: str, remedy: str, occurred_at: datetime, *, policy: str
) -> list[Draft]:
    """A verified bug: refund the ticket (money back) or credit it back (a new email lot)."""
    if remedy not in REMEDIES:
        raise InputError(
            f"remedy {remedy!r} must be 'refund' or 'credit'", field="remedy", value=remedy
        )
    consumption = ledger.consumption_of(ticket_id)
    if policy == EMERGENCY or (consumption is not None and consumption.credit_kind == EMERGENCY):
        raise InputError(
            f"ticket {ticket_id} is an emergency ticket: emergency tickets are never refunded "
            "or credited back for a bug (their cost pays for the one-hour response)",
            field="type",
            value="verified_bug",
        )
    if consumption is None:
        return []
    done = _already_remedied(ledger, ticket_id)
    if done is not None:
        raise Conflict(
            f"ticket {ticket_id} was already remedied ({done.entry_type} on "
            f"{done.occurred_at.isoformat()})",
            field="remedy",
            value=remedy,
        )
    assert consumption.lot_id is not None
    lot = ledger.lot(consumption.lot_id)
    if remedy == "refund":
        return [_refund(lot, ticket_id, occurred_at, "verified bug")]
    return [
        Draft(
            CREDIT_BACK,
            occurred_at=occurred_at,
            quantity=1,
            credit_kind=EMAIL,
            expires_at=expiry_of(occurred_at),
            lot=lot.id,
            ticket_id=ticket_id,
            source="verified_bug",
            note="verified bug: ticket credited back",
        )
    ]


def plan_not_an_emergency(
    ledger: Ledger, ticket_id: str, refund: bool, occurred_at: datetime
) -> list[Draft]:
    """An emergency judged not to be one: optionally refund its purchase. It continues as a
    standard ticket without taking an email credit (the customer already paid for it)."""
    if not refund:
        return []
    consumption = ledger.consumption_of(ticket_id)
    if consumption is None:
        return []
    if consumption.credit_kind != EMERGENCY:
        raise Conflict(
            f"ticket {ticket_id} was not bought as an emergency ticket (it used an email "
            "credit): there is no emergency purchase to refund",
            field="refund",
            value=refund,
        )
    done = _already_remedied(ledger, ticket_id)
    if done is not None:
        raise Conflict(
            f"ticket {ticket_id} was already refunded ({done.occurred_at.isoformat()})",
            field="refund",
            value=refund,
        )
    assert consumption.lot_id is not None
    return [_refund(ledger.lot(consumption.lot_id), ticket_id, occurred_at, "not an emergency")]


def _refund(lot: Entry, ticket_id: str, at: datetime, why: str) -> Draft:
    return Draft(
        REFUND,
        occurred_at=at,
        quantity=0,
        credit_kind=lot.credit_kind,
        lot=lot.id,
        ticket_id=ticket_id,
        price_per_ticket=lot.price_per_ticket,
        note=f"{why}: ticket price refunded",
    )
