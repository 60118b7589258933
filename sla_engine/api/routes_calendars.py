"""Calendars: list, show, open intervals, and versions (`PUT`, `GET .../versions`).

Calendars are named, never given as paths, and no answer shows a server path: stored and
file calendars alike are built from their stored definitions, whose errors name the calendar.
A calendar that never closes (24x7) answers `next_close: null`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sla_engine.api.bodies import body_schema
from sla_engine.api.deps import ServicesDep
from sla_engine.api.iso_times import format_instant
from sla_engine.api.limits import body_limit
from sla_engine.api.openapi import problem_responses
from sla_engine.api.problems import ProblemError, invalid
from sla_engine.api.service_calls import call
from sla_engine.calendar_store import CalendarStore
from sla_engine.composition import Services
from sla_engine.core.calendar import Calendar
from sla_engine.core.calendar_file import CalendarSpec
from sla_engine.edge.problems import FieldError, Problem
from sla_engine.edge.requests import Instant
from sla_engine.errors import CalendarError, NotFound
from sla_engine.json_types import JsonObject

router = APIRouter(tags=["calendars"])

MAX_INTERVAL_SPAN = timedelta(days=366)
DEFAULT_INTERVAL_SPAN = timedelta(days=7)
MAX_PUT_BODY_BYTES = 1024 * 1024
TOML_TYPES = ("application/toml", "text/toml", "application/x-toml")


class CalendarPutRequest(BaseModel):
    """A calendar version: the definition (section 1 keys as JSON), when it takes effect."""

    model_config = ConfigDict(extra="forbid")

    definition: JsonObject = Field(
        description="the calendar keys: name, timezone, hours, holidays (country, subdiv, "
        "categories, ics_text), dates, closures",
        examples=[{"timezone": "Europe/Berlin", "hours": {"mon": ["08:00-17:00"]}}],
    )
    effective_from: Instant | None = Field(
        default=None,
        description="null on creation; for a new version default now; before now needs "
        "retroactive: true",
    )
    retroactive: bool = False


class CalendarVersionCreated(BaseModel):
    name: str
    version: int
    effective_from: str | None


class CalendarVersionView(BaseModel):
    version: int
    effective_from: str | None
    created_at: str | None
    retroactive: bool
    origin: str
    definition: JsonObject


_PUT_BODY = {**body_schema(CalendarPutRequest), **body_limit(MAX_PUT_BODY_BYTES)}
_PUT_BODY["requestBody"]["content"]["application/toml"] = {
    "schema": {"type": "string", "description": "the calendar file's TOML text"}
}


def _store(services: Services) -> CalendarStore:
    store = services.calendar_store
    if store is None:
        raise ProblemError(
            Problem(status=503, slug="unavailable", detail="calendar store not configured")
        )
    return store


def _calendar(services: Services, name: str) -> Calendar:
    """The calendar NAME (all versions); 404 naming `name` when there is none."""
    source = _store(services).source
    from sla_engine.calendar_store.changes import NAME

    if not NAME.match(name) or name.endswith(".toml") or not source.is_known(name):
        known = ", ".join(source.names())
        raise NotFound(
            f"calendar {name!r}: no such calendar; known calendars: {known}",
            field="name",
            value=name,
        )
    return source.calendar(name)


def _optional(compute: Callable[[], datetime]) -> datetime | None:
    """`compute()`, or None when the calendar has no such instant (never closes/opens)."""
    try:
        return compute()
    except CalendarError:
        return None


def _in_force(cal: Calendar, at: datetime) -> CalendarSpec:
    return cal.version_at(at).spec


def _summary(name: str, spec: CalendarSpec, versions: int) -> JsonObject:
    return {
        "name": name,
        "title": spec.title,
        "timezone": spec.timezone.key,
        "versions": versions,
    }


@router.get("/calendars")
def calendars(services: ServicesDep) -> JsonObject:
    """Every calendar the service can use (stored and file calendars): title and time zone
    in force now, and how many versions it has."""
    store = _store(services)
    now = services.clock()
    listed = []
    for name in store.source.names():
        try:
            cal = store.source.calendar(name)
        except CalendarError:
            continue  # a broken file calendar never recorded: nothing usable to show
        versions = len(store.source.rows(name)) or 1
        listed.append(_summary(name, _in_force(cal, now), versions))
    return {"calendars": listed}


@router.get("/calendars/{name}")
def calendar(name: str, services: ServicesDep) -> JsonObject:
    """One calendar: the definition and version in force now, whether it is open now, and
    its next opening and closing (null when there is none: 24x7 never closes)."""
    cal = _calendar(services, name)
    store = _store(services)
    now = services.clock()
    spec = _in_force(cal, now)
    rows = store.source.rows(name)
    in_force = [r for r in rows if r.effective_from is None or r.effective_from <= now]
    current = in_force[-1] if in_force else None
    next_open = _optional(lambda: cal.next_open(now))
    next_close = _optional(lambda: cal.next_close(now))
    return {
        **_summary(name, spec, len(rows) or 1),
        "version": current.version if current is not None else 1,
        "open_now": cal.is_open(now),
        "next_open": None if next_open is None else next_open.isoformat(),
        "next_close": None if next_close is None else next_close.isoformat(),
        "definition": (
            current.definition
            if current is not None
            else store.changes.versions(name)[0]["definition"]
        ),
    }


@router.get("/calendars/{name}/intervals")
def intervals(
    name: str,
    services: ServicesDep,
    start: Annotated[
        Instant | None, Query(alias="from", description="ISO 8601 with offset; default: now")
    ] = None,
    end: Annotated[
        Instant | None,
        Query(alias="to", description="ISO 8601 with offset; default: from + 7 days; max 366 days"),
    ] = None,
) -> JsonObject:
    """The open intervals meeting [from, to), clipped to it, each in the zone of the
    calendar version in force at it."""
    cal = _calendar(services, name)
    begin = start if start is not None else services.clock()
    finish = end if end is not None else begin + DEFAULT_INTERVAL_SPAN
    if finish < begin:
        raise invalid("to", finish.isoformat(), "must not be before from")
    if finish - begin > MAX_INTERVAL_SPAN:
        raise invalid("to", finish.isoformat(), "at most 366 days after from")
    tz = _in_force(cal, begin).timezone
    return {
        "calendar": name,
        "timezone": tz.key,
        "from": format_instant(begin, tz),
        "to": format_instant(finish, tz),
        "intervals": [
            {"start": a.isoformat(), "end": b.isoformat()}
            for a, b in cal.open_intervals(begin, finish)
        ],
    }


@router.get(
    "/calendars/{name}/versions",
    response_model=list[CalendarVersionView],
)
async def versions(name: str, request: Request, services: ServicesDep) -> list[JsonObject]:
    """The calendar's versions, oldest first: each a whole definition and the instant it is
    in force from (null for version 1). A file calendar's content is version 1; each change
    of the file, and each `PUT`, adds one."""
    return await call(request, _store(services).changes.versions, name)


@router.put(
    "/calendars/{name}",
    status_code=201,
    response_model=CalendarVersionCreated,
    responses=problem_responses(409),
    openapi_extra=_PUT_BODY,
)
async def put_calendar(
    name: str,
    request: Request,
    services: ServicesDep,
    effective_from: Annotated[
        Instant | None,
        Query(description="with a TOML body: when the version takes effect (default now)"),
    ] = None,
    retroactive: Annotated[
        bool | None, Query(description="with a TOML body: allow an effective_from before now")
    ] = None,
) -> JSONResponse:
    """Create a calendar (version 1) or add a version to it.

    The body is JSON `{definition, effective_from, retroactive}` or the calendar file's TOML
    text (`Content-Type: application/toml`, then `?effective_from=&retroactive=`). On an
    existing calendar `effective_from` defaults to now; one before now needs `retroactive`
    (409 otherwise), and one before the latest version's is 409. `holidays.ics` paths are
    refused; send `holidays.ics_text`. A bad definition is a 422 naming the key; nothing is
    stored then."""
    from sla_engine.calendar_store.definitions import definition_from_toml

    store = _store(services)
    media, raw = await _read_body(request)
    if media in TOML_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("body", None, "TOML text must be UTF-8") from None
        definition = definition_from_toml(text)
        when, retro = effective_from, bool(retroactive)
    else:
        for param, value in (("effective_from", effective_from), ("retroactive", retroactive)):
            if value is not None:
                raise invalid(param, str(value), "with a JSON body, give it in the body")
        try:
            body = CalendarPutRequest.model_validate_json(raw)
        except ValidationError as exc:
            from fastapi.exceptions import RequestValidationError

            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
            ) from None
        definition, when, retro = body.definition, body.effective_from, body.retroactive
    result = await call(
        request,
        lambda: store.put(name, definition, effective_from=when, retroactive=retro),
    )
    return JSONResponse(result.to_json(), status_code=201)


async def _read_body(request: Request) -> tuple[str, bytes]:
    """(media type, body): JSON or TOML (else 415), at most MAX_PUT_BODY_BYTES (else 413)."""
    from sla_engine.api.problems import is_json_content_type

    content_type = request.headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not (is_json_content_type(content_type) or media in TOML_TYPES):
        raise ProblemError(
            Problem(
                status=415,
                slug="unsupported-media-type",
                detail="send the calendar as JSON ('Content-Type: application/json') or as "
                "TOML ('Content-Type: application/toml')",
                errors=(
                    FieldError(
                        "Content-Type", content_type, "must be application/json or application/toml"
                    ),
                ),
            )
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_PUT_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PUT_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return media, b"".join(chunks)


def _too_large() -> ProblemError:
    return ProblemError(
        Problem(
            status=413,
            slug="too-large",
            detail=f"a calendar definition is at most {MAX_PUT_BODY_BYTES} bytes",
        )
    )
