"""PURE: one line of the import format, parsed and checked like the HTTP body it stands for.

A line is a JSON object whose `kind` says what it is:

- `{"kind": "ticket", ...}`: the body of `POST /v1/tickets`;
- `{"kind": "event", "ticket_id": ..., ...}`: the body of `POST /v1/tickets/{ticket_id}/events`;
- `{"kind": "grant", "account": ..., "type": ..., ...}`: the body of
  `POST /v1/accounts/{account}/grants`, its `kind` (the grant kind) given as `type`, since
  `kind` names the line;
- `{"kind": "subscription", "account": ..., "type": "hosted", "start": ..., "end": ...}`: the
  body of `POST /v1/accounts/{account}/subscriptions`, `type` likewise (default `hosted`).

Bodies go through the API's own request models, so a line is refused exactly when the
request would be, and the error names the same field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from sla_engine.edge.problems import NAIVE_MESSAGE, field_path
from sla_engine.edge.requests import (
    EARLIEST,
    ID_MAX,
    LATEST,
    NAME_MAX,
    EventRequest,
    GrantRequest,
    SubscriptionRequest,
    TicketRequest,
    in_supported_range,
)
from sla_engine.errors import InputError
from sla_engine.tickets import EventCreate, TicketCreate, check_identifier

KINDS = ("ticket", "event", "grant", "subscription")
_TICKET_FIELDS = frozenset(f.name for f in fields(TicketCreate))


class LineError(ValueError):
    """A line that cannot be imported; `message` names the field at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, per line
class TicketLine:
    request: TicketCreate


@dataclass(slots=True)
class EventLine:
    ticket_id: str
    request: EventCreate


@dataclass(frozen=True, slots=True)
class GrantLine:
    account: str
    kind: str
    occurred_at: datetime
    quantity: int | None
    price_per_ticket: Decimal | None
    package: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionLine:
    account: str
    kind: str
    start: datetime
    end: datetime | None


Line = TicketLine | EventLine | GrantLine | SubscriptionLine


def parse_line(text: str | bytes) -> Line:
    """The line as a typed request; `LineError` when it would be refused as a request."""
    text = text.rstrip(b"\r\n") if isinstance(text, bytes) else text.rstrip("\r\n")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = _json_loads(text)
    if not isinstance(obj, dict):
        raise LineError("body: a line must be a JSON object")
    return parse_object(obj)


def _json_loads(text: str | bytes) -> Any:
    """The standard library's reading, for what orjson refuses: it accepts more (NaN, lone
    surrogates, integers past 64 bits, as the API's parser does) and words the error."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LineError(f"body: malformed JSON: {exc}") from None


def parse_object(obj: dict[str, Any]) -> Line:
    kind = obj.pop("kind", None)
    fast = _FAST.get(kind) if isinstance(kind, str) else None
    if fast is not None:
        line = fast(obj)
        if line is not None:
            return line
    try:
        if kind == "ticket":
            return TicketLine(ticket_request(obj))
        if kind == "event":
            ticket_id = obj.pop("ticket_id", None)
            checked_id = _identifier(ticket_id, "ticket_id")
            return EventLine(checked_id, event_request(obj))
        if kind == "grant":
            account = _identifier(obj.pop("account", None), "account")
            body = GrantRequest.model_validate(_type_as_kind(obj, None))
            return GrantLine(
                account,
                body.kind,
                body.occurred_at,
                body.quantity,
                body.price_per_ticket,
                body.package,
            )
        if kind == "subscription":
            account = _identifier(obj.pop("account", None), "account")
            sub = SubscriptionRequest.model_validate(_type_as_kind(obj, "hosted"))
            return SubscriptionLine(account, sub.kind, sub.start, sub.end)
    except ValidationError as exc:
        raise LineError(validation_message(exc)) from None
    raise LineError(f"kind: must be one of {', '.join(KINDS)} (got {kind!r})")


def ticket_request(body: Mapping[str, Any]) -> TicketCreate:
    """A ticket body as `POST /v1/tickets` reads it (pydantic `ValidationError` if not)."""
    model = TicketRequest.model_validate(body)
    values = {k: v for k, v in model.model_dump().items() if k in _TICKET_FIELDS}
    if values.get("version") is not None:
        values["version"] = str(values["version"])
    return TicketCreate(**values)


def event_request(body: Mapping[str, Any]) -> EventCreate:
    """An event body as `POST /v1/tickets/{id}/events` reads it."""
    model = EventRequest.model_validate(body)
    return EventCreate(
        event_id=model.event_id, type=model.type, occurred_at=model.occurred_at, data=model.data()
    )


def _type_as_kind(obj: dict[str, Any], default: str | None) -> dict[str, Any]:
    """The body with its kind, given on the line as `type` (`kind` names the line)."""
    kind = obj.pop("type", default)
    return {**obj, "kind": kind} if kind is not None else obj


def _identifier(value: Any, name: str) -> str:
    if value is None:
        raise LineError(f"{name}: field required")
    try:
        return check_identifier(value, name)
    except InputError as exc:
        raise LineError(f"{name}: {exc.message}") from None


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field, worded as the API's 422 problems."""
    parts = []
    for err in exc.errors():
        where = field_path(("body", *err.get("loc", ())))
        kind = err.get("type", "")
        if where == "kind" and kind in ("literal_error", "enum"):
            where = "type"
        if kind == "missing":
            message = "field required"
        elif kind == "timezone_aware":
            message = NAIVE_MESSAGE
        elif kind == "extra_forbidden":
            message = "unknown field"
        else:
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "body: invalid"


# --- the common shapes, read without pydantic ------------------------------------------------
#
# Most lines are plain events and tickets; validating them through the request models costs
# more than the rest of their import, and pydantic's own tzinfo makes every later datetime
# comparison slower. A line of the usual shape (extended ISO 8601 instants, string fields
# within their lengths) is read here, with the same result the models give; anything else
# (an error, an unusual form) goes through the models, which decide and word the error.

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")
_SURE_YEARS = range(EARLIEST.year + 2, LATEST.year - 1)
"""Years whose every instant, at any offset, is in the supported range: checked without
comparing instants (an aware comparison across offsets costs several microseconds)."""
_EVENT_KEYS = frozenset({"ticket_id", "event_id", "type", "occurred_at"})
_TICKET_LIMITS = {
    name: limit
    for name, limit in (
        ("id", ID_MAX),
        ("policy", NAME_MAX),
        ("account", ID_MAX),
        ("product", NAME_MAX),
        ("calendar", NAME_MAX),
    )
    if name in TicketRequest.model_fields and name in _TICKET_FIELDS
}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or _INSTANT.fullmatch(value) is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.year in _SURE_YEARS or in_supported_range(parsed):
        return parsed
    return None


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _fast_event(obj: dict[str, Any]) -> EventLine | None:
    ticket_id, event_id, type_ = obj.get("ticket_id"), obj.get("event_id"), obj.get("type")
    if not (_text(event_id, ID_MAX) and _text(type_, NAME_MAX) and isinstance(ticket_id, str)):
        return None
    occurred_at = _instant(obj.get("occurred_at"))
    if occurred_at is None:
        return None
    try:
        check_identifier(ticket_id, "ticket_id")
    except InputError:
        return None
    data = {k: v for k, v in obj.items() if k not in _EVENT_KEYS} if len(obj) > 4 else {}
    return EventLine(ticket_id, EventCreate(str(event_id), str(type_), occurred_at, data))


def _fast_ticket(obj: dict[str, Any]) -> TicketLine | None:
    values: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "created_at":
            values[key] = _instant(value)
            if values[key] is None:
                return None
        elif key == "version":
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                return None
            values[key] = value
        elif key in _TICKET_LIMITS and _text(value, _TICKET_LIMITS[key]):
            values[key] = value
        else:
            return None
    if "id" not in values or "policy" not in values or "created_at" not in values:
        return None
    return TicketLine(TicketCreate(**values))


_FAST: dict[str, Callable[[dict[str, Any]], Line | None]] = {
    "event": _fast_event,
    "ticket": _fast_ticket,
}
