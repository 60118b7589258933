"""Ledger entries as the API and the CLI show them (plain JSON-ready dicts)."""

from __future__ import annotations

from sla_engine.core.times import iso_utc
from sla_engine.credits.models import LedgerEntry
from sla_engine.json_types import JsonObject


def entry_view(row: LedgerEntry) -> JsonObject:
    """One entry; instants in UTC, as stored (the caller's offset is not kept)."""
    return {
        "id": row.id,
        "account": row.account,
        "type": row.entry_type,
        "kind": row.credit_kind,
        "quantity": row.quantity,
        "occurred_at": iso_utc(row.occurred_at),
        "expires_at": iso_utc(row.expires_at),
        "lot_id": row.lot_id,
        "ticket_id": row.ticket_id,
        "source": row.source,
        "price_per_ticket": row.price_per_ticket,
        "package": row.package,
        "event_id": row.event_id,
        "note": row.note,
        "recorded_at": iso_utc(row.recorded_at),
    }
