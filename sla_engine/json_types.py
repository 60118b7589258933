"""The name of a free-form JSON object: an answer built as a dict and sent or stored as JSON
(a service's view of a ticket, a ledger, a calendar definition as stored).

Its values are whatever JSON holds, so they stay `Any`; a seam between parts of the engine
takes real types instead (`Services`, `TicketHook`, `CalendarSource`, `sessionmaker`).
"""

from __future__ import annotations

from typing import Any, TypeAlias

JsonObject: TypeAlias = dict[str, Any]
