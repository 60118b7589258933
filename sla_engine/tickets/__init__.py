"""Tickets: requests and their checks, JSON views, the store (all ticket SQL) and the service.

The names other parts import live here: ``from sla_engine.tickets import TicketService``.
"""

from sla_engine.tickets.metric_rows import METRIC_FIELDS, metric_values
from sla_engine.tickets.recent_calendars import RecentCalendars
from sla_engine.tickets.requests import (
    CLOCK_EVENT_TYPES,
    CREDIT_EVENT_TYPES,
    EVENT_TYPES,
    EventCreate,
    TicketCreate,
    check_aware,
    check_event_request,
    check_identifier,
    check_policy,
    check_ticket_request,
)
from sla_engine.tickets.store import StoredEvent
from sla_engine.tickets.ticket_service import TicketHook, TicketService, utcnow
from sla_engine.tickets.views import event_view, ticket_view

__all__ = [
    "CLOCK_EVENT_TYPES",
    "CREDIT_EVENT_TYPES",
    "EVENT_TYPES",
    "METRIC_FIELDS",
    "EventCreate",
    "RecentCalendars",
    "StoredEvent",
    "TicketCreate",
    "TicketHook",
    "TicketService",
    "check_aware",
    "check_event_request",
    "check_identifier",
    "check_policy",
    "check_ticket_request",
    "event_view",
    "metric_values",
    "ticket_view",
    "utcnow",
]
