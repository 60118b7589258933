"""Error types shared by every entry point.

Each user-facing error names the field and the value, so the CLI can print one line and the
HTTP API can answer with an RFC 9457 problem naming the field.
"""

from __future__ import annotations


class SlaEngineError(Exception):
    """Base of the engine's own errors."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value


class InputError(SlaEngineError, ValueError):
    """Bad input from a user: a file, an argument or a request body (HTTP 422)."""

    status = 422


class CalendarError(InputError):
    """A calendar file or calendar computation that cannot be honoured."""


class ConfigError(InputError):
    """An invalid service config file."""


class NotFound(SlaEngineError, LookupError):
    """A named thing (ticket, calendar, escalation) that does not exist (HTTP 404)."""

    status = 404


class Conflict(SlaEngineError):
    """A request that contradicts stored data, e.g. a ticket id reused (HTTP 409)."""

    status = 409


class PaymentRequired(SlaEngineError):
    """No support credit is available for a submission (HTTP 402)."""

    status = 402
