"""Section 5 credit rules through the HTTP API, on a real uvicorn server and a real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import pg_database
from tests.support.credits import Api, problem, running_credits_api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """One service per database for the whole module; tests keep apart by id namespace."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('credits') / 'sla-engine.db'}"
        with running_credits_api(url) as running:
            yield running
        return
    with pg_database() as url, running_credits_api(url) as running:
        yield running


@pytest.fixture
def api(server: Api) -> Api:
    server.fresh_namespace()
    return server


def kinds(entries: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in entries]


# --- grants and balances ------------------------------------------------------------------------


def test_each_grant_kind_adds_the_seed_quantity_of_email_credits(api: Api) -> None:
    at = "2026-01-05T09:00:00-07:00"
    for kind in ("license_purchase", "renewal", "reinstatement", "bundle_purchase"):
        assert api.grant("acme", kind, at).status_code == 201
    bought = api.grant(
        "acme", "ticket_purchase", at, quantity=5, price_per_ticket="15.00", package="5-pack"
    )
    assert bought.status_code == 201
    assert bought.json()["entry"]["price_per_ticket"] == "15.00"
    balance = api.credits("acme", "2026-01-06T00:00:00Z")
    assert balance["email"] == 2 + 1 + 1 + 2 + 5
    assert balance["emergency"] == 0
    assert balance["unlimited_email"] is False
    assert sorted(lot["remaining"] for lot in balance["lots"]) == [1, 1, 2, 2, 5]
    assert {lot["kind"] for lot in balance["lots"]} == {"email"}
    assert api.credits("acme", "2026-01-05T15:59:59Z")["email"] == 0  # before the purchase


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "free_lunch"}, "kind"),
        ({"kind": "renewal", "quantity": 3}, "quantity"),
        ({"kind": "ticket_purchase", "quantity": 0}, "quantity"),
        ({"kind": "ticket_purchase", "price_per_ticket": -1}, "price_per_ticket"),
        ({"kind": "license_purchase", "price_per_ticket": 10}, "price_per_ticket"),
        ({"kind": "renewal", "occurred_at": "2026-01-05T09:00:00"}, "occurred_at"),
        ({"kind": "renewal", "occurred_at": None}, "occurred_at"),
        ({"kind": "renewal", "colour": "red"}, "colour"),
    ],
)
def test_bad_grants_are_refused_naming_the_field_and_change_nothing(
    api: Api, body: dict[str, object], field: str
) -> None:
    full = {"occurred_at": "2026-01-05T09:00:00Z", **body}
    response = api.client.post(f"/v1/accounts/{api.id('acme')}/grants", json=full)
    assert problem(response, 422)["field"] == field
    assert api.ledger("acme") == []


def test_a_bad_at_is_refused(api: Api) -> None:
    response = api.client.get(f"/v1/accounts/{api.id('acme')}/credits", params={"at": "yesterday"})
    assert problem(response, 422)["field"] == "at"


def test_credits_expire_twelve_calendar_months_after_purchase_and_29_february_on_28(
    api: Api,
) -> None:
    api.grant("leap", "license_purchase", "2024-02-29T10:00:00-07:00")
    (lot,) = api.credits("leap", "2024-03-01T00:00:00Z")["lots"]
    assert lot["purchased_at"] == "2024-02-29T17:00:00+00:00"
    assert lot["expires_at"] == "2025-02-28T17:00:00+00:00"
    assert api.credits("leap", "2025-02-28T16:59:59Z")["email"] == 2
    assert api.credits("leap", "2025-02-28T17:00:00Z")["email"] == 0

    assert api.ticket("L-1", "2025-02-28T09:59:00-07:00", "leap").status_code == 201
    refused = api.ticket("L-2", "2025-02-28T10:00:00-07:00", "leap")
    assert problem(refused, 402)["field"] == "account"


def test_a_submission_consumes_the_credit_expiring_first(api: Api) -> None:
    api.grant("order", "ticket_purchase", "2026-03-01T00:00:00Z", quantity=1)
    api.grant("order", "license_purchase", "2026-01-01T00:00:00Z")
    assert api.ticket("O-1", "2026-04-01T00:00:00Z", "order").status_code == 201
    entries = api.ledger("order")
    license_lot = next(e for e in entries if e["source"] == "license_purchase")
    (consumption,) = [e for e in entries if e["type"] == "consumption"]
    assert consumption["lot_id"] == license_lot["id"]
    assert consumption["ticket_id"] == "O-1"
    assert consumption["quantity"] == -1
    balance = api.credits("order", "2026-04-01T00:00:00Z")
    assert [(lot["source"], lot["remaining"]) for lot in balance["lots"]] == [
        ("license_purchase", 1),
        ("ticket_purchase", 1),
    ]


# --- submission --------------------------------------------------------------------------------


def test_no_credit_is_a_402_problem_telling_to_purchase_and_nothing_is_written(api: Api) -> None:
    api.grant("poor", "renewal", "2026-01-01T00:00:00Z")
    assert api.ticket("P-1", "2026-02-01T00:00:00Z", "poor").status_code == 201
    before = api.ledger("poor")
    refused = api.ticket("P-2", "2026-02-02T00:00:00Z", "poor")
    body = problem(refused, 402)
    assert "purchase a ticket" in body["detail"]
    assert "poor" in body["detail"] and "2026-02-02" in body["detail"]
    assert body["field"] == "account" and api.strip(body["errors"][0]["value"]) == "poor"
    assert api.get_ticket("P-2").status_code == 404
    assert api.ledger("poor") == before
    # a submission judged before the credit existed is refused too
    assert api.ticket("P-0", "2025-12-31T23:59:59Z", "fresh").status_code == 402


def test_a_ticket_without_account_uses_no_credit_rules(api: Api) -> None:
    assert api.ticket("N-1", "2026-02-01T00:00:00Z").status_code == 201
    assert api.ticket_json("N-1")["account"] is None


def test_the_same_ticket_posted_again_consumes_once(api: Api) -> None:
    api.grant("again", "license_purchase", "2026-01-01T00:00:00Z")
    assert api.ticket("A-1", "2026-02-01T00:00:00Z", "again").status_code == 201
    assert api.ticket("A-1", "2026-02-01T00:00:00Z", "again").status_code == 200
    assert api.credits("again", "2026-02-02T00:00:00Z")["email"] == 1


def test_a_backdated_ticket_cannot_take_a_credit_a_later_ticket_used(api: Api) -> None:
    api.grant("late", "renewal", "2026-01-01T00:00:00Z")
    assert api.ticket("B-2", "2026-03-01T00:00:00Z", "late").status_code == 201
    assert api.ticket("B-1", "2026-02-01T00:00:00Z", "late").status_code == 402
    for at in ("2026-01-02T00:00:00Z", "2026-03-02T00:00:00Z"):
        assert api.credits("late", at)["email"] >= 0


# --- hosted subscriptions -------------------------------------------------------------------


def test_a_hosted_subscription_covers_email_tickets_while_active(api: Api) -> None:
    assert api.subscribe("host", "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z").status_code == 201
    assert api.credits("host", "2026-03-01T00:00:00Z")["unlimited_email"] is True
    assert api.credits("host", "2026-07-01T00:00:00Z")["unlimited_email"] is False
    for i in range(3):
        assert api.ticket(f"H-{i}", "2026-03-01T00:00:00Z", "host").status_code == 201
    covered = [e for e in api.ledger("host") if e["type"] == "covered_by_subscription"]
    assert [(e["ticket_id"], e["quantity"]) for e in covered] == [
        ("H-0", 0),
        ("H-1", 0),
        ("H-2", 0),
    ]
    assert problem(api.ticket("H-9", "2026-07-01T00:00:00Z", "host"), 402)


def test_an_open_subscription_can_be_ended_and_bad_periods_are_refused(api: Api) -> None:
    api.subscribe("open", "2026-01-01T00:00:00Z")
    assert api.credits("open", "2030-01-01T00:00:00Z")["unlimited_email"] is True
    ended = api.subscribe("open", "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z")
    assert ended.json()["entry"]["type"] == "subscription_end"
    assert api.credits("open", "2026-05-31T00:00:00Z")["unlimited_email"] is True
    assert api.credits("open", "2026-06-01T00:00:00Z")["unlimited_email"] is False
    bad = api.subscribe("open", "2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert problem(bad, 422)["field"] == "end"
    odd = api.client.post(
        f"/v1/accounts/{api.id('open')}/subscriptions",
        json={"kind": "onprem", "start": "2026-01-01T00:00:00Z"},
    )
    assert problem(odd, 422)["field"] == "kind"


# --- emergency tickets ------------------------------------------------------------------------


def test_an_emergency_ticket_is_bought_and_consumed_at_submission(api: Api) -> None:
    created = api.ticket("E-1", "2026-02-01T03:00:00Z", "urgent", policy="emergency")
    assert created.status_code == 201
    entries = api.ledger("urgent")
    assert kinds(entries) == ["emergency_purchase", "consumption"]
    purchase, consumption = entries
    assert (purchase["kind"], purchase["quantity"]) == ("emergency", 1)
    assert consumption["lot_id"] == purchase["id"] and consumption["quantity"] == -1
    balance = api.credits("urgent", "2026-02-02T00:00:00Z")
    assert (balance["email"], balance["emergency"]) == (0, 0)


def test_an_emergency_ticket_is_never_refunded_for_a_bug(api: Api) -> None:
    api.ticket("E-2", "2026-02-01T03:00:00Z", "urgent2", policy="emergency")
    before = api.ledger("urgent2")
    for remedy in ("refund", "credit"):
        refused = api.event(
            "E-2", f"bug-{remedy}", "verified_bug", "2026-02-01T05:00:00Z", remedy=remedy
        )
        assert problem(refused, 422)["field"] == "type"
    assert api.ledger("urgent2") == before
    events = api.ticket_json("E-2")["events"]
    assert [e["type"] for e in events if e["type"] == "verified_bug"] == []


def test_not_an_emergency_refunds_and_continues_as_standard(api: Api) -> None:
    api.ticket("E-3", "2026-02-02T15:00:00Z", "urgent3", policy="emergency")
    answer = api.event("E-3", "nae", "not_an_emergency", "2026-02-02T15:20:00Z", refund=True)
    assert answer.status_code == 201, answer.text
    assert answer.json()["sla"]["policy"] == "standard"
    entries = api.ledger("urgent3")
    assert kinds(entries) == ["emergency_purchase", "consumption", "refund"]
    assert entries[-1]["ticket_id"] == "E-3" and entries[-1]["quantity"] == 0
    assert api.ticket_json("E-3")["current_policy"] == "standard"
    again = api.event("E-3", "nae-2", "not_an_emergency", "2026-02-02T15:30:00Z", refund=True)
    assert problem(again, 409)["field"] == "refund"


def test_not_an_emergency_without_refund_keeps_the_purchase(api: Api) -> None:
    api.ticket("E-4", "2026-02-02T15:00:00Z", "urgent4", policy="emergency")
    assert (
        api.event(
            "E-4", "nae", "not_an_emergency", "2026-02-02T15:20:00Z", refund=False
        ).status_code
        == 201
    )
    assert kinds(api.ledger("urgent4")) == ["emergency_purchase", "consumption"]
    bad = api.event("E-4", "nae-x", "not_an_emergency", "2026-02-02T15:21:00Z", refund="yes")
    assert problem(bad, 422)["field"] == "refund"
    api.grant("std", "renewal", "2026-01-01T00:00:00Z")
    api.ticket("S-1", "2026-02-02T15:00:00Z", "std")
    not_one = api.event("S-1", "nae", "not_an_emergency", "2026-02-02T15:20:00Z", refund=True)
    assert problem(not_one, 422)["field"] == "type"


# --- verified bugs ----------------------------------------------------------------------------


def test_a_verified_bug_refund_returns_money_not_a_credit(api: Api) -> None:
    api.grant("bug", "ticket_purchase", "2026-01-01T00:00:00Z", quantity=1, price_per_ticket=25)
    api.ticket("V-1", "2026-02-01T00:00:00Z", "bug")
    answer = api.event("V-1", "vb", "verified_bug", "2026-02-03T00:00:00Z", remedy="refund")
    assert answer.status_code == 201, answer.text
    refund = api.ledger("bug")[-1]
    assert (refund["type"], refund["quantity"], refund["price_per_ticket"]) == ("refund", 0, "25")
    assert api.credits("bug", "2026-02-04T00:00:00Z")["email"] == 0
    twice = api.event("V-1", "vb-2", "verified_bug", "2026-02-04T00:00:00Z", remedy="credit")
    assert problem(twice, 409)["field"] == "remedy"


def test_a_verified_bug_credit_back_is_a_new_credit_expiring_12_months_later(api: Api) -> None:
    api.grant("cb", "renewal", "2026-01-01T00:00:00Z")
    api.ticket("V-2", "2026-12-20T00:00:00Z", "cb")
    api.event("V-2", "vb", "verified_bug", "2026-12-30T00:00:00Z", remedy="credit")
    back = api.ledger("cb")[-1]
    assert back["type"] == "credit_back" and back["quantity"] == 1
    assert back["expires_at"] == "2027-12-30T00:00:00+00:00"
    # the original lot expired on 2027-01-01; the credited-back ticket is still usable after it
    assert api.credits("cb", "2027-06-01T00:00:00Z")["email"] == 1
    assert api.ticket("V-3", "2027-06-01T00:00:00Z", "cb").status_code == 201


@pytest.mark.parametrize("data", [{}, {"remedy": "cash"}])
def test_a_verified_bug_needs_a_remedy(api: Api, data: dict[str, str]) -> None:
    api.grant("rem", "renewal", "2026-01-01T00:00:00Z")
    api.ticket("V-4", "2026-02-01T00:00:00Z", "rem")
    refused = api.event("V-4", "vb", "verified_bug", "2026-02-02T00:00:00Z", **data)
    assert problem(refused, 422)["field"] == "remedy"
    assert kinds(api.ledger("rem")) == ["grant", "consumption"]


# --- splits -----------------------------------------------------------------------------------


def test_a_split_issue_needs_its_own_credit(api: Api) -> None:
    api.grant("split", "license_purchase", "2026-01-01T00:00:00Z")
    api.ticket("SP-1", "2026-02-01T00:00:00Z", "split", product="SmarterMail", version="12.3")
    answer = api.event("SP-1", "sp", "split", "2026-02-01T02:00:00Z", new_ticket_id="SP-2")
    assert answer.status_code == 201, answer.text
    new = api.ticket_json("SP-2")
    assert (new["account"], new["product"], new["created_at"]) == (
        "split",
        "SmarterMail",
        "2026-02-01T02:00:00+00:00",
    )
    assert [e["ticket_id"] for e in api.ledger("split") if e["type"] == "consumption"] == [
        "SP-1",
        "SP-2",
    ]
    refused = api.event("SP-1", "sp2", "split", "2026-02-01T03:00:00Z", new_ticket_id="SP-3")
    assert "purchase a ticket" in problem(refused, 402)["detail"]
    assert api.get_ticket("SP-3").status_code == 404
    events = api.ticket_json("SP-1")["events"]
    assert [e["event_id"] for e in events if e["type"] == "split"] == ["sp"]


def test_a_split_names_a_new_ticket(api: Api) -> None:
    api.grant("split2", "license_purchase", "2026-01-01T00:00:00Z")
    api.ticket("SQ-1", "2026-02-01T00:00:00Z", "split2")
    missing = api.event("SQ-1", "sp", "split", "2026-02-01T02:00:00Z")
    assert problem(missing, 422)["field"] == "new_ticket_id"
    existing = api.event("SQ-1", "sp", "split", "2026-02-01T02:00:00Z", new_ticket_id="SQ-1")
    assert problem(existing, 409)["field"] == "new_ticket_id"


# --- RSAA -------------------------------------------------------------------------------------


def test_rsaa_is_granted_revoked_and_revoked_when_the_ticket_closes(api: Api) -> None:
    api.ticket("R-1", "2026-02-01T00:00:00Z")
    assert api.strip(api.rsaa("R-1").json())["status"] == "none"
    assert (
        api.event(
            "R-1", "g1", "rsaa_granted", "2026-02-01T01:00:00Z", granted_by="alice@customer"
        ).status_code
        == 201
    )
    assert (
        api.event(
            "R-1", "r1", "rsaa_revoked", "2026-02-01T02:00:00Z", revoked_by="alice@customer"
        ).status_code
        == 201
    )
    assert (
        api.event(
            "R-1", "g2", "rsaa_granted", "2026-02-01T03:00:00Z", granted_by="bob@customer"
        ).status_code
        == 201
    )
    state = api.strip(api.rsaa("R-1").json())
    assert (state["granted"], state["granted_by"]) == (True, "bob@customer")
    assert api.event("R-1", "c", "closed", "2026-02-01T04:00:00Z").status_code == 201
    state = api.strip(api.rsaa("R-1").json())
    assert state["granted"] is False and state["status"] == "revoked"
    assert state["revoked_at"] == "2026-02-01T04:00:00+00:00"
    trail = [(r["action"], r["by"], r["reason"]) for r in state["trail"]]
    assert trail == [
        ("granted", "alice@customer", "granted"),
        ("revoked", "alice@customer", "revoked"),
        ("granted", "bob@customer", "granted"),
        ("revoked", "system", "ticket closed"),
    ]
    earlier = api.rsaa("R-1", "2026-02-01T03:30:00Z")
    assert earlier.json()["granted"] is True
    closed = api.event("R-1", "g3", "rsaa_granted", "2026-02-01T05:00:00Z", granted_by="bob")
    assert problem(closed, 409)["field"] == "type"


def test_rsaa_needs_granted_by_and_an_existing_ticket(api: Api) -> None:
    api.ticket("R-2", "2026-02-01T00:00:00Z")
    refused = api.event("R-2", "g", "rsaa_granted", "2026-02-01T01:00:00Z")
    assert problem(refused, 422)["field"] == "granted_by"
    assert problem(api.rsaa("NOPE"), 404)["field"] == "ticket_id"


# --- legacy products --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "status", "minor"),
    [
        ("12", "supported", True),
        ("12.1.5", "supported", True),
        ("11.x", "supported", True),
        ("10", "legacy", False),
        ("1.0", "legacy", False),
    ],
)
def test_product_versions_are_supported_or_legacy(
    api: Api, version: str, status: str, minor: bool
) -> None:
    body = api.client.get(f"/v1/products/SmarterMail/versions/{version}").json()
    assert (body["status"], body["minor_updates"], body["tickets_accepted"]) == (
        status,
        minor,
        True,
    )


def test_unknown_products_and_bad_versions_are_refused(api: Api) -> None:
    unknown = api.client.get("/v1/products/SmarterPaint/versions/3")
    assert problem(unknown, 404)["field"] == "product"
    for bad in ("twelve", "13", "0"):
        response = api.client.get(f"/v1/products/SmarterMail/versions/{bad}")
        assert problem(response, 422)["field"] == "version"


def test_tickets_for_legacy_versions_are_accepted_and_flagged(api: Api) -> None:
    assert (
        api.ticket(
            "LG-1", "2026-02-01T00:00:00Z", product="SmarterMail", version="10.2"
        ).status_code
        == 201
    )
    assert api.ticket_json("LG-1")["legacy"] is True
    api.ticket("LG-2", "2026-02-01T00:00:00Z", product="SmarterMail", version=11)
    assert api.ticket_json("LG-2")["legacy"] is False
    api.ticket("LG-3", "2026-02-01T00:00:00Z", product="Unlisted", version="4")
    assert api.ticket_json("LG-3")["legacy"] is None
    bad = api.ticket("LG-4", "2026-02-01T00:00:00Z", product="SmarterMail", version="v12")
    assert problem(bad, 422)["field"] == "version"
    assert api.get_ticket("LG-4").status_code == 404


# --- housekeeping -------------------------------------------------------------------------------


def test_housekeeping_books_expirations_once_and_balances_do_not_change(api: Api) -> None:
    api.grant("hk", "license_purchase", "2025-01-10T00:00:00Z")
    api.ticket("HK-1", "2025-03-01T00:00:00Z", "hk")
    instants = ["2025-06-01T00:00:00Z", "2026-01-09T23:59:59Z", "2026-01-10T00:00:00Z"]
    before = [api.credits("hk", at) for at in instants]
    assert api.services.credits.record_expirations() >= 1  # other tests' accounts share the db
    assert api.services.credits.record_expirations() == 0
    assert [e["type"] for e in api.ledger("hk")].count("expiry") == 1
    assert [api.credits("hk", at) for at in instants] == before
    expiry = api.ledger("hk")[-1]
    assert (expiry["type"], expiry["quantity"], expiry["occurred_at"]) == (
        "expiry",
        -1,
        "2026-01-10T00:00:00+00:00",
    )
    assert sum(e["quantity"] for e in api.ledger("hk")) == 0


def test_a_ticket_escalated_to_emergency_has_no_purchase_to_refund(api: Api) -> None:
    api.grant("esc", "renewal", "2026-01-01T00:00:00Z")
    api.ticket("X-1", "2026-02-02T15:00:00Z", "esc")
    changed = api.event("X-1", "pc", "policy_changed", "2026-02-02T15:05:00Z", policy="emergency")
    assert changed.status_code == 201, changed.text
    refused = api.event("X-1", "nae", "not_an_emergency", "2026-02-02T15:20:00Z", refund=True)
    assert problem(refused, 409)["field"] == "refund"
    kept = api.event("X-1", "nae2", "not_an_emergency", "2026-02-02T15:20:00Z", refund=False)
    assert kept.status_code == 201
    assert kinds(api.ledger("esc")) == ["grant", "consumption"]
