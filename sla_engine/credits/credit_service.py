"""Credit requests, one transaction each: grants, subscriptions, balances, the ledger, RSAA.

Every decision is taken by the pure `plans` module over the account's ledger, read by
`store` after the account's row is locked. Spending a credit on a ticket write is the
`CreditHook`'s job (`credit_hook.py`); booking expirations is housekeeping's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.times import require_aware, utcnow
from sla_engine.credits import plans, store
from sla_engine.credits.housekeeping import record_expirations
from sla_engine.credits.rsaa import rsaa_state
from sla_engine.credits.views import entry_view
from sla_engine.errors import NotFound
from sla_engine.json_types import JsonObject
from sla_engine.tickets import check_identifier


def check_account(value: object) -> str:
    return check_identifier(value, "account")


class CreditService:
    """Credit requests, one transaction each (the ticket hook is `CreditHook`)."""

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        config: ServiceConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.config = config
        self.clock = clock

    def grant(
        self,
        account: str,
        kind: str,
        occurred_at: datetime,
        *,
        quantity: int | None = None,
        price_per_ticket: str | Decimal | float | int | None = None,
        package: str | None = None,
    ) -> JsonObject:
        """Record a grant (licence, renewal, reinstatement, bundle) or a ticket purchase."""
        check_account(account)
        require_aware(occurred_at, "occurred_at")
        if package is not None:
            check_identifier(package, "package", max_length=100)
        draft = plans.plan_grant(
            kind, occurred_at, quantity=quantity, price_per_ticket=price_per_ticket, package=package
        )
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            store.lock_account(session, account, now)
            (row,) = store.append(session, account, [draft], now)
            return {"account": account, "entry": entry_view(row)}

    def subscribe(
        self, account: str, kind: str, start: datetime, end: datetime | None = None
    ) -> JsonObject:
        """Record a hosted-service subscription (or the end of an open-ended one)."""
        check_account(account)
        require_aware(start, "start")
        if end is not None:
            require_aware(end, "end")
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            store.lock_account(session, account, now)
            draft = plans.plan_subscription(store.load_ledger(session, account), kind, start, end)
            (row,) = store.append(session, account, [draft], now)
            return {"account": account, "entry": entry_view(row)}

    def credits(self, account: str, at: datetime | None = None) -> JsonObject:
        """The account's balances at `at` (default: now), derived from the ledger."""
        check_account(account)
        when = self.clock() if at is None else require_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            balance = store.load_ledger(session, account).balance(when)
        return {"account": account, **balance.to_json()}

    def ledger(self, account: str) -> JsonObject:
        """Every entry of the account, in the order recorded."""
        check_account(account)
        with self.sessionmaker() as session, session.begin():
            rows = store.ledger_rows(session, account)
            return {"account": account, "entries": [entry_view(row) for row in rows]}

    def rsaa(self, ticket_id: str, at: datetime | None = None) -> JsonObject:
        """The ticket's RSAA state at `at` (default: now) with its audit trail."""
        when = self.clock() if at is None else require_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            if not store.ticket_exists(session, ticket_id):
                raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
            return rsaa_state(ticket_id, store.ticket_log(session, ticket_id), when).to_json()

    def record_expirations(self, now: datetime | None = None) -> int:
        """Book every expiry due by `now` (default: now); returns the entries appended."""
        when = self.clock() if now is None else require_aware(now, "now")
        with self.sessionmaker() as session, session.begin():
            return record_expirations(session, when)
