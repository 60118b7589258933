"""The pure credit ledger and its plans: lots, expiry, consumption order, remedies, and
property tests that random histories keep every balance >= 0 and equal to the ledger's sum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.credits import plans
from sla_engine.credits.ledger import GRANT_QUANTITIES, Draft, Ledger, expiry_of
from sla_engine.errors import Conflict, InputError, PaymentRequired

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def granted(*grants: tuple[str, float]) -> Ledger:
    return Ledger().appended([plans.plan_grant(kind, at(day)) for kind, day in grants])


def submit(
    ledger: Ledger, ticket: str, day: float, policy: str = "standard", now_day: float = 1000
) -> Ledger:
    drafts = plans.plan_submission(ledger, "acc", ticket, policy, at(day), at(now_day))
    return ledger.appended(drafts)


@pytest.mark.parametrize(
    ("purchased", "expires"),
    [
        (datetime(2024, 2, 29, 10, tzinfo=UTC), datetime(2025, 2, 28, 10, tzinfo=UTC)),
        (datetime(2025, 3, 31, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)),
        (datetime(2023, 2, 28, 23, 59, tzinfo=UTC), datetime(2024, 2, 28, 23, 59, tzinfo=UTC)),
        (
            datetime(2024, 2, 29, 20, tzinfo=timezone(timedelta(hours=-7))),
            datetime(2025, 2, 28, 20, tzinfo=timezone(timedelta(hours=-7))),
        ),
        (
            datetime(2026, 3, 20, 9, tzinfo=ZoneInfo("Europe/Paris")),
            datetime(2027, 3, 20, 9, tzinfo=ZoneInfo("Europe/Paris")),
        ),
    ],
)
def test_expiry_is_twelve_calendar_months_later(purchased: datetime, expires: datetime) -> None:
    assert expiry_of(purchased) == expires


def test_grant_quantities_follow_the_seed() -> None:
    quantities = {kind: plans.plan_grant(kind, T0).quantity for kind in GRANT_QUANTITIES}
    assert quantities == {
        "license_purchase": 2,
        "renewal": 1,
        "reinstatement": 1,
        "bundle_purchase": 2,
    }
    bought = plans.plan_grant(
        "ticket_purchase", T0, quantity=10, price_per_ticket="9.50", package="10-pack"
    )
    assert (bought.quantity, bought.price_per_ticket, bought.package) == (10, "9.50", "10-pack")
    assert plans.plan_grant("ticket_purchase", T0).quantity == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "gift"}, "kind"),
        ({"kind": "renewal", "quantity": 2}, "quantity"),
        ({"kind": "ticket_purchase", "quantity": 0}, "quantity"),
        ({"kind": "ticket_purchase", "quantity": True}, "quantity"),
        ({"kind": "ticket_purchase", "price_per_ticket": "ten"}, "price_per_ticket"),
        ({"kind": "ticket_purchase", "price_per_ticket": "NaN"}, "price_per_ticket"),
        ({"kind": "ticket_purchase", "price_per_ticket": "0.00001"}, "price_per_ticket"),
        ({"kind": "bundle_purchase", "package": "x"}, "package"),
    ],
)
def test_bad_grants_name_the_field(kwargs: dict[str, object], field: str) -> None:
    kind = str(kwargs.pop("kind"))
    with pytest.raises(InputError) as caught:
        plans.plan_grant(kind, T0, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_consumption_takes_the_lot_expiring_first_and_skips_expired_ones() -> None:
    ledger = granted(("renewal", 0), ("license_purchase", 100), ("bundle_purchase", 50))
    ledger = submit(ledger, "T1", 200)
    assert ledger.consumption_of("T1").lot_id == 1  # type: ignore[union-attr]
    ledger = submit(ledger, "T2", 370)  # lot 1 expired on day 365, lot 3 expires first now
    assert ledger.consumption_of("T2").lot_id == 3  # type: ignore[union-attr]
    assert ledger.balance(at(370)).of("email") == 3
    assert ledger.balance(at(200)).of("email") == 4


def test_a_submission_without_a_credit_is_refused() -> None:
    with pytest.raises(PaymentRequired) as caught:
        submit(granted(("renewal", 10)), "T1", 5)
    assert caught.value.field == "account" and "purchase a ticket" in caught.value.message


def test_a_backdated_submission_cannot_take_a_credit_used_later() -> None:
    ledger = submit(granted(("renewal", 0)), "LATER", 100)
    with pytest.raises(PaymentRequired):
        submit(ledger, "EARLIER", 50)


def test_emergency_is_bought_then_consumed() -> None:
    ledger = submit(Ledger(), "E", 3, policy="emergency")
    assert [e.entry_type for e in ledger.entries] == ["emergency_purchase", "consumption"]
    assert ledger.balance(at(4)).of("emergency") == 0
    with pytest.raises(InputError) as caught:
        plans.plan_verified_bug(ledger, "E", "refund", at(5), policy="emergency")
    assert caught.value.field == "type"
    refund = plans.plan_not_an_emergency(ledger, "E", True, at(5))
    assert [d.entry_type for d in refund] == ["refund"]
    with pytest.raises(Conflict):
        plans.plan_not_an_emergency(ledger.appended(refund), "E", True, at(6))


def test_only_an_emergency_purchase_is_refunded_as_not_an_emergency() -> None:
    ledger = submit(granted(("renewal", 0)), "T", 3)
    with pytest.raises(Conflict) as caught:
        plans.plan_not_an_emergency(ledger, "T", True, at(4))
    assert caught.value.field == "refund"
    assert plans.plan_not_an_emergency(ledger, "T", False, at(4)) == []


def test_credit_back_is_a_new_lot_from_the_day_of_the_credit() -> None:
    ledger = submit(granted(("renewal", 0)), "T", 360)
    (back,) = plans.plan_verified_bug(ledger, "T", "credit", at(362), policy="standard")
    assert (back.entry_type, back.quantity, back.expires_at) == (
        "credit_back",
        1,
        expiry_of(at(362)),
    )
    ledger = ledger.appended([back])
    assert ledger.balance(at(400)).of("email") == 1
    with pytest.raises(Conflict):
        plans.plan_verified_bug(ledger, "T", "refund", at(363), policy="standard")


def test_subscriptions_cover_email_and_can_be_ended() -> None:
    ledger = Ledger().appended([plans.plan_subscription(Ledger(), "hosted", at(0), None)])
    ended = plans.plan_subscription(ledger, "hosted", at(0), at(30))
    assert ended.entry_type == "subscription_end"
    ledger = ledger.appended([ended])
    assert ledger.covered_by_subscription(at(29)) and not ledger.covered_by_subscription(at(30))
    (covered,) = plans.plan_submission(ledger, "a", "T", "standard", at(1), at(2))
    assert (covered.entry_type, covered.quantity) == ("covered_by_subscription", 0)


def test_a_late_consumption_reverses_an_expiry_already_booked() -> None:
    ledger = granted(("renewal", 0))
    ledger = ledger.appended(ledger.expirations_due(at(400)))
    assert [e.quantity for e in ledger.entries] == [1, -1]
    ledger = submit(ledger, "LATE", 200, now_day=401)
    assert [e.entry_type for e in ledger.entries][-2:] == ["consumption", "expiry_reversal"]
    assert ledger.expirations_due(at(402)) == []
    assert ledger.total(at(402)) == ledger.balance(at(402)).of("email") == 0


# --- property tests -----------------------------------------------------------------------------

DAY = st.floats(min_value=0, max_value=900, allow_nan=False).map(lambda d: round(d, 3))
OPERATION = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(sorted(GRANT_QUANTITIES)), DAY),
    st.tuples(st.just("buy"), st.integers(1, 4), DAY),
    st.tuples(st.just("submit"), st.sampled_from(["standard", "emergency"]), DAY),
    st.tuples(st.just("remedy"), st.sampled_from(["refund", "credit"]), DAY),
    st.tuples(st.just("not_an_emergency"), st.booleans(), DAY),
    st.tuples(st.just("subscribe"), DAY, st.floats(1, 200).map(lambda d: round(d, 3))),
    st.tuples(st.just("housekeeping"), DAY, DAY),
)


def apply(ledger: Ledger, op: tuple[Any, ...], n: int, now: datetime) -> Ledger:
    """One operation of a random history; refused operations leave the ledger as it was."""
    kind, a, b = op
    try:
        if kind == "grant":
            drafts = [plans.plan_grant(a, at(b))]
        elif kind == "buy":
            drafts = [plans.plan_grant("ticket_purchase", at(b), quantity=a)]
        elif kind == "submit":
            drafts = plans.plan_submission(ledger, "acc", f"T{n}", a, at(b), now)
        elif kind == "subscribe":
            drafts = [plans.plan_subscription(ledger, "hosted", at(a), at(a + b))]
        elif kind == "housekeeping":
            drafts = ledger.expirations_due(at(max(a, b)))
        else:
            drafts = remedy(ledger, kind, a, b, n)
    except (PaymentRequired, Conflict, InputError):
        return ledger
    return ledger.appended(drafts)


def remedy(ledger: Ledger, kind: str, a: Any, b: float, n: int) -> list[Draft]:
    tickets = sorted({e.ticket_id for e in ledger.entries if e.ticket_id})
    if not tickets:
        return []
    ticket = tickets[n % len(tickets)]
    consumption = ledger.consumption_of(ticket)
    when = max(at(b), consumption.occurred_at if consumption else T0)
    emergency = consumption is not None and consumption.credit_kind == "emergency"
    if kind == "remedy":
        policy = "emergency" if emergency else "standard"
        return plans.plan_verified_bug(ledger, ticket, a, when, policy=policy)
    return plans.plan_not_an_emergency(ledger, ticket, a, when)


def ledger_sum(ledger: Ledger, instant: datetime) -> int:
    """The entries that make up the balance at `instant`: lots valid then, their consumptions."""
    total = 0
    for e in ledger.entries:
        if e.occurred_at > instant:
            continue
        if e.is_lot and e.valid_at(instant):
            total += e.quantity
        elif e.entry_type == "consumption" and e.lot_id is not None:
            total += e.quantity if ledger.lot(e.lot_id).valid_at(instant) else 0
    return total


def assert_consistent(ledger: Ledger, instants: list[datetime]) -> None:
    for instant in instants:
        balance = ledger.balance(instant)
        assert all(lot.remaining >= 0 for lot in balance.lots)
        assert balance.of("email") >= 0 and balance.of("emergency") >= 0
        assert balance.of("email") + balance.of("emergency") == ledger_sum(ledger, instant)
    for entry in ledger.entries:
        if entry.entry_type == "consumption" and entry.lot_id is not None:
            lot = ledger.lot(entry.lot_id)
            assert lot.valid_at(entry.occurred_at)
            assert lot.credit_kind == entry.credit_kind
    for lot in ledger.lots():
        assert ledger.uncommitted(lot) >= 0


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(OPERATION, max_size=40), probes=st.lists(DAY, min_size=1, max_size=8))
def test_random_histories_keep_balances_non_negative_and_equal_to_the_ledger_sum(
    ops: list[tuple[object, ...]], probes: list[float]
) -> None:
    ledger = Ledger()
    now = at(1000)
    for n, op in enumerate(ops):
        ledger = apply(ledger, op, n, now)
    instants = [at(p) for p in probes] + [e.occurred_at for e in ledger.entries] + [now]
    assert_consistent(ledger, instants)
    booked = ledger.appended(ledger.expirations_due(now))
    assert booked.expirations_due(now) == []
    assert_consistent(booked, instants)
    for instant in instants:
        assert booked.balance(instant) == ledger.balance(instant)  # housekeeping changes nothing
    for instant in instants:
        balance = booked.balance(instant)
        assert booked.total(instant) == balance.of("email") + balance.of("emergency")
