"""Duration strings of policy files and the CLI: "4h", "90m", "1h30m", "45s", "1.5h".

Only hours, minutes and seconds: a "day" is ambiguous in business time (9 business hours? 24?),
so it is left out on purpose. Numbers may be decimal; the result must be a whole number of
microseconds, the engine's resolution.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from sla_engine.core.times import timedelta_us
from sla_engine.errors import InputError

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(
    rf"^(?P<sign>[-+]?)\s*(?:{_NUMBER}\s*h)?\s*(?:{_NUMBER}\s*m)?\s*(?:{_NUMBER}\s*s)?$",
    re.IGNORECASE,
)
_UNIT_US = (3_600_000_000, 60_000_000, 1_000_000)


def parse_duration(text: str, field: str = "duration", *, signed: bool = False) -> timedelta:
    """Parse "4h", "90m", "1h30m", "45s", "0s" into a timedelta.

    Negative durations ("-15m") are accepted only with `signed=True` (escalation offsets).
    Anything else raises `InputError` naming `field` and the text.
    """
    if not isinstance(text, str):
        raise InputError(
            f"{field}: expected a duration such as '4h' or '1h30m', got {text!r}",
            field=field,
            value=text,
        )
    match = _DURATION.match(text.strip())
    if match is None or all(part is None for part in match.groups()[1:]):
        raise InputError(
            f"{field}: invalid duration {text!r}; use hours, minutes and seconds such as "
            "'4h', '90m', '1h30m' or '45s'",
            field=field,
            value=text,
        )
    micros = Decimal(0)
    try:
        for part, unit in zip(match.groups()[1:], _UNIT_US, strict=True):
            if part is not None:
                micros += Decimal(part) * unit
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise InputError(f"{field}: invalid duration {text!r}", field=field, value=text) from None
    if micros != micros.to_integral_value():
        raise InputError(
            f"{field}: duration {text!r} is finer than a microsecond", field=field, value=text
        )
    negative = match.group("sign") == "-" and micros != 0
    if negative and not signed:
        raise InputError(
            f"{field}: duration must not be negative, got {text!r}", field=field, value=text
        )
    value = timedelta(microseconds=int(micros))
    return -value if negative else value


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way policy files write it: "1h30m", "4h", "45s", "0s"."""
    micros = timedelta_us(value)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if micros:
        parts.append(f"{seconds}.{micros:06d}".rstrip("0") + "s")
    elif seconds or not parts:
        parts.append(f"{seconds}s")
    return sign + "".join(parts)
