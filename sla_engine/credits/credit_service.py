"""Credit ledger I/O: grants, subscriptions, balances, and the ticket hook that spends credits.

Every decision is taken by the pure `ledger` module over the account's entries, read after
the account's row is locked, so two submissions racing for the last credit are serialised:
SQLite transactions begin with `BEGIN IMMEDIATE`; on PostgreSQL the account row is created
with `INSERT ... ON CONFLICT DO NOTHING` and locked with `SELECT ... FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.config import ServiceConfig
from sla_engine.core.clock import Event, TicketState
from sla_engine.core.products import legacy_flag
from sla_engine.credits import ledger as rules
from sla_engine.credits.ledger import Draft, Ledger
from sla_engine.credits.models import CreditAccount, LedgerEntry
from sla_engine.credits.rsaa import LogEvent, closed_at, rsaa_state
from sla_engine.errors import Conflict, InputError, NotFound
from sla_engine.storage.models import Ticket, TicketEvent
from sla_engine.tickets import TicketCreate, check_aware, check_identifier, check_policy

if TYPE_CHECKING:
    from sla_engine.tickets import TicketService


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- storage helpers (work inside the caller's transaction) ------------------------------------


def lock_account(session: Session, account: str, now: datetime) -> None:
    """Create the account's row if needed and hold its lock until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(CreditAccount)
        .values(account=account, created_at=now)
        .on_conflict_do_nothing(index_elements=["account"])
    )
    session.execute(
        select(CreditAccount.account).where(CreditAccount.account == account).with_for_update()
    )


def load_ledger(session: Session, account: str) -> Ledger:
    rows = session.scalars(
        select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
    )
    return Ledger(tuple(row.to_entry() for row in rows))


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
            lot_id=rules.resolve_lot(draft, ids),
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


def entry_view(row: LedgerEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "account": row.account,
        "type": row.entry_type,
        "kind": row.credit_kind,
        "quantity": row.quantity,
        "occurred_at": _iso(row.occurred_at),
        "expires_at": _iso(row.expires_at),
        "lot_id": row.lot_id,
        "ticket_id": row.ticket_id,
        "source": row.source,
        "price_per_ticket": row.price_per_ticket,
        "package": row.package,
        "event_id": row.event_id,
        "note": row.note,
        "recorded_at": _iso(row.recorded_at),
    }


def _iso(value: datetime | None) -> str | None:
    """UTC ISO 8601, as stored (the caller's offset is not kept)."""
    return None if value is None else value.astimezone(UTC).isoformat()


def ticket_log(session: Session, ticket_id: str) -> list[LogEvent]:
    rows = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.seq)
    )
    return [
        LogEvent(r.event_id, r.type, r.occurred_at, r.seq, dict(r.data), r.received_at)
        for r in rows
    ]


def check_account(value: Any) -> str:
    return check_identifier(value, "account")


# --- the service -----------------------------------------------------------------------------


class CreditService:
    """Credit requests, one transaction each, plus the hook ticket writes call."""

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
        self.hook = CreditHook(self)
        self.tickets: TicketService | None = None

    def attach(self, tickets: TicketService) -> None:
        """The ticket service a `split` creates its new ticket through."""
        self.tickets = tickets

    def grant(
        self,
        account: str,
        kind: str,
        occurred_at: datetime,
        *,
        quantity: int | None = None,
        price_per_ticket: Any = None,
        package: str | None = None,
    ) -> dict[str, Any]:
        """Record a grant (licence, renewal, reinstatement, bundle) or a ticket purchase."""
        check_account(account)
        check_aware(occurred_at, "occurred_at")
        if package is not None:
            check_identifier(package, "package", max_length=100)
        draft = rules.plan_grant(
            kind, occurred_at, quantity=quantity, price_per_ticket=price_per_ticket, package=package
        )
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            lock_account(session, account, now)
            (row,) = append(session, account, [draft], now)
            return {"account": account, "entry": entry_view(row)}

    def subscribe(
        self, account: str, kind: str, start: datetime, end: datetime | None = None
    ) -> dict[str, Any]:
        """Record a hosted-service subscription (or the end of an open-ended one)."""
        check_account(account)
        check_aware(start, "start")
        if end is not None:
            check_aware(end, "end")
        now = self.clock()
        with self.sessionmaker() as session, session.begin():
            lock_account(session, account, now)
            draft = rules.plan_subscription(load_ledger(session, account), kind, start, end)
            (row,) = append(session, account, [draft], now)
            return {"account": account, "entry": entry_view(row)}

    def credits(self, account: str, at: datetime | None = None) -> dict[str, Any]:
        """The account's balances at `at` (default: now), derived from the ledger."""
        check_account(account)
        when = self.clock() if at is None else check_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            balance = load_ledger(session, account).balance(when)
        return {"account": account, **balance.to_json()}

    def ledger(self, account: str) -> dict[str, Any]:
        """Every entry of the account, in the order recorded."""
        check_account(account)
        with self.sessionmaker() as session, session.begin():
            rows = session.scalars(
                select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
            )
            return {"account": account, "entries": [entry_view(row) for row in rows]}

    def rsaa(self, ticket_id: str, at: datetime | None = None) -> dict[str, Any]:
        """The ticket's RSAA state at `at` (default: now) with its audit trail."""
        when = self.clock() if at is None else check_aware(at, "at")
        with self.sessionmaker() as session, session.begin():
            if session.get(Ticket, ticket_id) is None:
                raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id", value=ticket_id)
            return rsaa_state(ticket_id, ticket_log(session, ticket_id), when).to_json()

    def record_expirations(self, now: datetime | None = None) -> int:
        """Book every expiry due by `now` (default: now); returns the entries appended."""
        from sla_engine.credits.housekeeping import record_expirations

        when = self.clock() if now is None else check_aware(now, "now")
        with self.sessionmaker() as session, session.begin():
            return record_expirations(session, when)


# --- the ticket hook ---------------------------------------------------------------------------


class CreditHook:
    """Spends a credit when a ticket with an account is created; handles the credit events."""

    def __init__(self, credits: CreditService) -> None:
        self.credits = credits

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None:
        ticket.legacy = legacy_flag(request.product, request.version, self.credits.config.products)
        if ticket.account is None:
            return
        self._submit(session, ticket, now)

    def _submit(
        self, session: Session, ticket: Ticket, now: datetime, note: str | None = None
    ) -> None:
        assert ticket.account is not None
        lock_account(session, ticket.account, now)
        drafts = rules.plan_submission(
            load_ledger(session, ticket.account),
            ticket.account,
            ticket.id,
            ticket.policy,
            ticket.created_at,
            now,
            note=note,
        )
        append(session, ticket.account, drafts, now)

    def on_event(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        handler = {
            "verified_bug": self._verified_bug,
            "split": self._split,
            "not_an_emergency": self._not_an_emergency,
            "rsaa_granted": self._rsaa_granted,
            "rsaa_revoked": self._rsaa_revoked,
        }.get(event.type)
        if handler is not None:
            handler(session, ticket, event, now)

    def on_state(self, session: Session, ticket: Ticket, state: TicketState, now: datetime) -> None:
        return None

    # -- credit events --

    def _remedy(
        self,
        session: Session,
        ticket: Ticket,
        event: Event,
        now: datetime,
        plan: Callable[[Ledger], list[Draft]],
    ) -> None:
        if ticket.account is None:
            plan(Ledger())
            return
        lock_account(session, ticket.account, now)
        drafts = plan(load_ledger(session, ticket.account))
        append(session, ticket.account, drafts, now, event_id=event.event_id)

    def _verified_bug(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        remedy = event.data.get("remedy")
        if remedy not in rules.REMEDIES:
            raise InputError(
                f"remedy {remedy!r} must be 'refund' or 'credit'", field="remedy", value=remedy
            )
        self._remedy(
            session,
            ticket,
            event,
            now,
            lambda led: rules.plan_verified_bug(
                led, ticket.id, str(remedy), event.occurred_at, policy=ticket.policy
            ),
        )

    def _not_an_emergency(
        self, session: Session, ticket: Ticket, event: Event, now: datetime
    ) -> None:
        refund = event.data.get("refund", False)
        if not isinstance(refund, bool):
            raise InputError("refund must be true or false", field="refund", value=refund)
        if rules.EMERGENCY not in (ticket.policy, ticket.current_policy):
            raise InputError(
                f"ticket {ticket.id} is not an emergency ticket (policy {ticket.current_policy})",
                field="type",
                value=event.type,
            )
        self._remedy(
            session,
            ticket,
            event,
            now,
            lambda led: rules.plan_not_an_emergency(led, ticket.id, refund, event.occurred_at),
        )

    def _split(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        new_id = event.data.get("new_ticket_id")
        check_identifier(new_id, "new_ticket_id")
        policy = event.data.get("policy", "standard")
        check_policy(policy, self.credits.config.policies)
        if session.get(Ticket, new_id) is not None:
            raise Conflict(
                f"new_ticket_id {new_id!r} is an existing ticket; a split creates a new one",
                field="new_ticket_id",
                value=new_id,
            )
        tickets = self.credits.tickets
        if tickets is None:
            raise RuntimeError("CreditService.attach(tickets) was not called")
        request = TicketCreate(
            id=str(new_id),
            policy=str(policy),
            created_at=event.occurred_at,
            account=ticket.account,
            product=ticket.product,
            version=ticket.version,
        )
        tickets.create_in_session(session, request, now)

    def _rsaa_granted(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        check_identifier(event.data.get("granted_by"), "granted_by")
        if closed_at(ticket_log(session, ticket.id), event.occurred_at):
            raise Conflict(
                f"ticket {ticket.id} is closed at {event.occurred_at.isoformat()}: an RSAA "
                "cannot be granted on a closed ticket (reopen it first)",
                field="type",
                value=event.type,
            )

    def _rsaa_revoked(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        revoked_by = event.data.get("revoked_by")
        if revoked_by is not None:
            check_identifier(revoked_by, "revoked_by")
