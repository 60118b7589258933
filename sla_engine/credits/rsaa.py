"""PURE: a ticket's remote server access agreement (RSAA), replayed from its event log.

An RSAA belongs to one ticket: `rsaa_granted` grants it, `rsaa_revoked` revokes it, and the
ticket's `closed` revokes it automatically. The audit trail is the replay of those events in
(occurred_at, arrival) order, so a late event lands where it happened, as for SLA clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sla_engine.json_types import JsonObject

GRANTED = "rsaa_granted"
REVOKED = "rsaa_revoked"
CLOSED = "closed"
REOPENED = "reopened"


@dataclass(frozen=True)
class LogEvent:
    """The parts of a ticket event the RSAA replay needs."""

    event_id: str
    type: str
    occurred_at: datetime
    seq: int
    data: JsonObject
    received_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    action: str  # granted | revoked
    by: str | None
    reason: str
    occurred_at: datetime
    recorded_at: datetime | None
    event_id: str

    def to_json(self) -> JsonObject:
        return {
            "action": self.action,
            "by": self.by,
            "reason": self.reason,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": None if self.recorded_at is None else self.recorded_at.isoformat(),
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class RsaaState:
    ticket_id: str
    at: datetime
    granted: bool
    granted_by: str | None
    granted_at: datetime | None
    revoked_at: datetime | None
    trail: tuple[AuditRecord, ...]

    @property
    def status(self) -> str:
        if self.granted:
            return "granted"
        return "revoked" if self.trail else "none"

    def to_json(self) -> JsonObject:
        return {
            "ticket_id": self.ticket_id,
            "at": self.at.isoformat(),
            "status": self.status,
            "granted": self.granted,
            "granted_by": self.granted_by,
            "granted_at": None if self.granted_at is None else self.granted_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "trail": [record.to_json() for record in self.trail],
        }


def closed_at(events: Iterable[LogEvent], at: datetime) -> bool:
    """Whether the ticket is closed at `at` (its last closed/reopened by then is `closed`)."""
    closed = False
    for event in sorted(events, key=lambda e: (e.occurred_at, e.seq)):
        if event.occurred_at > at:
            break
        if event.type == CLOSED:
            closed = True
        elif event.type == REOPENED:
            closed = False
    return closed


def rsaa_state(ticket_id: str, events: Iterable[LogEvent], at: datetime) -> RsaaState:
    """The RSAA at `at` and its audit trail up to then."""
    trail: list[AuditRecord] = []
    granted = False
    granted_by: str | None = None
    granted_at: datetime | None = None
    revoked_at: datetime | None = None
    for event in sorted(events, key=lambda e: (e.occurred_at, e.seq)):
        if event.occurred_at > at:
            break
        if event.type == GRANTED:
            by = str(event.data.get("granted_by"))
            trail.append(
                AuditRecord(
                    "granted", by, "granted", event.occurred_at, event.received_at, event.event_id
                )
            )
            granted, granted_by, granted_at, revoked_at = True, by, event.occurred_at, None
        elif event.type == REVOKED or (event.type == CLOSED and granted):
            if event.type == REVOKED:
                raw = event.data.get("revoked_by")
                revoker, reason = (None if raw is None else str(raw)), "revoked"
            else:
                revoker, reason = "system", "ticket closed"
            trail.append(
                AuditRecord(
                    "revoked", revoker, reason, event.occurred_at, event.received_at, event.event_id
                )
            )
            if granted:
                revoked_at = event.occurred_at
            granted = False
    return RsaaState(ticket_id, at, granted, granted_by, granted_at, revoked_at, tuple(trail))
