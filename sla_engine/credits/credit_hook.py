"""The ticket hook of the credits part: spend a credit on create, act on the credit events.

Runs inside the ticket write's transaction, so a refused credit (402, 409, 422) rolls the
whole request back. A `split` opens its new ticket through the ticket service it is given
(`TicketOpener`), in the same transaction, so the new ticket spends its own credit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from sla_engine.core.clock import Event, TicketState
from sla_engine.core.policies import Policy
from sla_engine.core.products import legacy_flag
from sla_engine.credits import plans, store
from sla_engine.credits.ledger import EMERGENCY, REMEDIES, Draft, Ledger
from sla_engine.credits.rsaa import closed_at
from sla_engine.errors import Conflict, InputError
from sla_engine.storage.models import Ticket
from sla_engine.tickets import TicketCreate, check_identifier, check_policy


class TicketOpener(Protocol):
    """What a split needs of the ticket service: open a ticket inside a transaction."""

    def create_in_session(self, session: Session, req: TicketCreate, now: datetime) -> object: ...


class CreditHook:
    """`TicketHook` that spends a credit when a ticket with an account is created and handles
    the credit events (verified bug, split, not an emergency, RSAA)."""

    def __init__(
        self,
        *,
        products: Mapping[str, int],
        policies: Mapping[str, Policy],
        tickets: TicketOpener,
    ) -> None:
        self.products = products
        self.policies = policies
        self.tickets = tickets

    def on_create(
        self, session: Session, ticket: Ticket, request: TicketCreate, now: datetime
    ) -> None:
        ticket.legacy = legacy_flag(request.product, request.version, self.products)
        if ticket.account is None:
            return
        store.lock_account(session, ticket.account, now)
        drafts = plans.plan_submission(
            store.load_ledger(session, ticket.account),
            ticket.account,
            ticket.id,
            ticket.policy,
            ticket.created_at,
            now,
        )
        store.append(session, ticket.account, drafts, now)

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
        store.lock_account(session, ticket.account, now)
        drafts = plan(store.load_ledger(session, ticket.account))
        store.append(session, ticket.account, drafts, now, event_id=event.event_id)

    def _verified_bug(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        remedy = event.data.get("remedy")
        if remedy not in REMEDIES:
            raise InputError(
                f"remedy {remedy!r} must be 'refund' or 'credit'", field="remedy", value=remedy
            )
        self._remedy(
            session,
            ticket,
            event,
            now,
            lambda led: plans.plan_verified_bug(
                led, ticket.id, str(remedy), event.occurred_at, policy=ticket.policy
            ),
        )

    def _not_an_emergency(
        self, session: Session, ticket: Ticket, event: Event, now: datetime
    ) -> None:
        refund = event.data.get("refund", False)
        if not isinstance(refund, bool):
            raise InputError("refund must be true or false", field="refund", value=refund)
        if EMERGENCY not in (ticket.policy, ticket.current_policy):
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
            lambda led: plans.plan_not_an_emergency(led, ticket.id, refund, event.occurred_at),
        )

    def _split(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        new_id = event.data.get("new_ticket_id")
        check_identifier(new_id, "new_ticket_id")
        policy = event.data.get("policy", "standard")
        check_policy(policy, self.policies)
        if store.ticket_exists(session, str(new_id)):
            raise Conflict(
                f"new_ticket_id {new_id!r} is an existing ticket; a split creates a new one",
                field="new_ticket_id",
                value=new_id,
            )
        request = TicketCreate(
            id=str(new_id),
            policy=str(policy),
            created_at=event.occurred_at,
            account=ticket.account,
            product=ticket.product,
            version=ticket.version,
        )
        self.tickets.create_in_session(session, request, now)

    def _rsaa_granted(self, session: Session, ticket: Ticket, event: Event, now: datetime) -> None:
        check_identifier(event.data.get("granted_by"), "granted_by")
        if closed_at(store.ticket_log(session, ticket.id), event.occurred_at):
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
