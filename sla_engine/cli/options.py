"""Parsing of command-line option values into domain values.

Every parser raises `InputError` naming the option and the text it got, so `main()` turns a
user's typo into one `error: ...` line and exit code 2. Command modules parse inside the
command body (not with click types) to keep that single error path.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sla_engine.core.durations import parse_duration
from sla_engine.core.times import is_aware
from sla_engine.errors import InputError


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset (or `Z`), e.g. `2026-11-20T13:00-07:00`.

    A naive date-time is refused: an instant without an offset is a guess about a zone,
    and a deadline computed from a guess is wrong by hours.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{option}: {text!r} is not an ISO 8601 date-time (e.g. 2026-11-20T13:00-07:00)",
            field=option,
            value=text,
        ) from None
    if not is_aware(value):
        raise InputError(
            f"{option}: {text!r} has no UTC offset; add one, e.g. {value.isoformat()}-07:00 "
            f"or {value.isoformat()}Z",
            field=option,
            value=text,
        )
    return value


def parse_date(text: str, option: str) -> date:
    """An ISO 8601 calendar date, e.g. `2026-12-24`."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{option}: {text!r} is not an ISO 8601 date (e.g. 2026-12-24)",
            field=option,
            value=text,
        ) from None


def parse_business_duration(text: str, option: str) -> timedelta:
    """A duration such as `4h`, `90m`, `1h30m` or `45s` (the policy-file syntax)."""
    return parse_duration(text, field=option)
