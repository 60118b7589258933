"""The operator's queue: `GET /v1/tickets`, tickets by time to breach in keyset pages.

- `keys`: the ticket row's queue keys and the hook that writes them in each ticket write;
- `listing`: the checked request and its opaque keyset cursor (pure);
- `store`: all the queue's SQL, each page served by an index;
- `views`: items with their metrics as they stand at the request's instant;
- `queue`: `TicketQueue.page`, one read transaction.
"""

from sla_engine.ticket_queue.keys import QueueHook, QueueKeys, queue_keys
from sla_engine.ticket_queue.listing import (
    BREACH_ORDER,
    CREATED_ORDER,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TICKET_STATUSES,
    Listing,
    decode_cursor,
    make_listing,
)
from sla_engine.ticket_queue.queue import TicketQueue

__all__ = [
    "BREACH_ORDER",
    "CREATED_ORDER",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "TICKET_STATUSES",
    "Listing",
    "QueueHook",
    "QueueKeys",
    "TicketQueue",
    "decode_cursor",
    "make_listing",
    "queue_keys",
]
