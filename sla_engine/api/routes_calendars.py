"""`GET /v1/calendars`, `/v1/calendars/{name}`, `/v1/calendars/{name}/intervals`."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sla_engine.api.iso_times import format_instant
from sla_engine.api.lookup import calendar_named
from sla_engine.api.problems import invalid
from sla_engine.api.schemas import Instant

router = APIRouter(tags=["calendars"])

MAX_INTERVAL_SPAN = timedelta(days=366)
DEFAULT_INTERVAL_SPAN = timedelta(days=7)


@router.get("/calendars")
def calendars() -> dict[str, Any]:
    """Every calendar the service can use, with its title and time zone."""
    from sla_engine.core.calendar import list_calendars

    return {"calendars": [_summary(calendar_named(name, "name")) for name in list_calendars()]}


@router.get("/calendars/{name}")
def calendar(name: str, request: Request) -> dict[str, Any]:
    """One calendar: its definition (the TOML file's tables) and whether it is open now."""
    cal = calendar_named(name, "name", in_path=True)
    now = request.app.state.services.clock()
    open_now = cal.is_open(now)
    return {
        **_summary(cal),
        "open_now": open_now,
        "next_open": format_instant(cal.next_open(now), cal.tz),
        "next_close": format_instant(cal.next_close(now), cal.tz),
        "definition": _definition(getattr(cal, "path", None)),
    }


@router.get("/calendars/{name}/intervals")
def intervals(
    name: str,
    request: Request,
    start: Annotated[
        Instant | None, Query(alias="from", description="ISO 8601 with offset; default: now")
    ] = None,
    end: Annotated[
        Instant | None,
        Query(alias="to", description="ISO 8601 with offset; default: from + 7 days; max 366 days"),
    ] = None,
) -> dict[str, Any]:
    """The open intervals meeting [from, to), clipped to it, in the calendar's zone."""
    cal = calendar_named(name, "name", in_path=True)
    begin = start if start is not None else request.app.state.services.clock()
    finish = end if end is not None else begin + DEFAULT_INTERVAL_SPAN
    if finish < begin:
        raise invalid("to", finish.isoformat(), "must not be before from")
    if finish - begin > MAX_INTERVAL_SPAN:
        raise invalid("to", finish.isoformat(), "at most 366 days after from")
    return {
        "calendar": cal.name,
        "timezone": str(cal.tz),
        "from": format_instant(begin, cal.tz),
        "to": format_instant(finish, cal.tz),
        "intervals": [
            {"start": format_instant(a, cal.tz), "end": format_instant(b, cal.tz)}
            for a, b in cal.open_intervals(begin, finish)
        ],
    }


def _summary(cal: Any) -> dict[str, Any]:
    return {"name": cal.name, "title": cal.title, "timezone": str(cal.tz)}


def _definition(path: Any) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        with Path(path).open("rb") as handle:
            return dict(_plain(tomllib.load(handle)))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _plain(value: Any) -> Any:
    """TOML values as JSON values (TOML dates and times become ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value
