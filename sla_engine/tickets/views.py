"""The JSON shapes of tickets and events, as plain dicts (the HTTP layer returns them as is)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sla_engine.core.times import iso
from sla_engine.json_types import JsonObject


class TicketFields(Protocol):
    """What a ticket view reads (the ORM row or a plain row)."""

    @property
    def id(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def current_policy(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def account(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def legacy(self) -> bool | None: ...
    @property
    def received_at(self) -> datetime: ...


class EventFields(Protocol):
    """What an event view reads."""

    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def received_at(self) -> datetime: ...


_VIEW_FIELDS = frozenset(
    (
        "id",
        "policy",
        "current_policy",
        "status",
        "created_at",
        "account",
        "product",
        "version",
        "legacy",
        "received_at",
    )
)


def ticket_view(ticket: TicketFields, calendar: str | None = None) -> JsonObject:
    """The ticket's own fields; ``calendar`` is the ticket's calendar in force (None: the
    policy's calendars apply)."""
    loaded = getattr(ticket, "__dict__", None)
    if loaded is not None and loaded.keys() >= _VIEW_FIELDS:
        # a row's values as loaded (an ORM object's attribute descriptors cost more than
        # the view: ten of them on every event answer)
        return {
            "id": loaded["id"],
            "policy": loaded["policy"],
            "current_policy": loaded["current_policy"],
            "status": loaded["status"],
            "created_at": iso(loaded["created_at"]),
            "account": loaded["account"],
            "product": loaded["product"],
            "version": loaded["version"],
            "legacy": loaded["legacy"],
            "received_at": iso(loaded["received_at"]),
            "calendar": calendar,
        }
    return {
        "id": ticket.id,
        "policy": ticket.policy,
        "current_policy": ticket.current_policy,
        "status": ticket.status,
        "created_at": iso(ticket.created_at),
        "account": ticket.account,
        "product": ticket.product,
        "version": ticket.version,
        "legacy": ticket.legacy,
        "received_at": iso(ticket.received_at),
        "calendar": calendar,
    }


def event_view(row: EventFields) -> JsonObject:
    return {
        **row.data,
        "event_id": row.event_id,
        "type": row.type,
        "occurred_at": iso(row.occurred_at),
        "seq": row.seq,
        "received_at": iso(row.received_at),
    }
