"""Instants and durations at the HTTP edge: ISO 8601 text <-> exact epoch microseconds.

Request times must carry a UTC offset; answers are ISO 8601 in the calendar's zone, the same
text `datetime.isoformat()` gives (microseconds only when non-zero). The array forms serve the
batch endpoint, where per-item Python work is the cost to keep small.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo

import numpy as np
from numpy.typing import NDArray

from sla_engine.api.problems import invalid
from sla_engine.core.times import DAY_US, ONE_US, from_epoch_us, is_aware
from sla_engine.edge.problems import NAIVE_MESSAGE
from sla_engine.edge.requests import RANGE_MESSAGE, in_supported_range

MAX_DURATION_S = 50 * 366 * 24 * 3600
"""Longest duration the API accepts (50 years); longer ones are surely a unit mistake."""


def parse_instant(text: object, field: str) -> datetime:
    """An aware datetime from ISO 8601 text; naive or malformed text is a 422 naming `field`."""
    if not isinstance(text, str):
        raise invalid(field, text, "must be an ISO 8601 date-time string with a UTC offset")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(field, text, "is not an ISO 8601 date-time") from None
    if not is_aware(value):
        raise invalid(field, text, NAIVE_MESSAGE)
    if not in_supported_range(value):
        raise invalid(field, text, RANGE_MESSAGE)
    return value


def parse_duration_value(value: object, field: str) -> timedelta:
    """A duration as policy text ("4h", "1h30m", "45s") or a number of seconds (>= 0)."""
    if isinstance(value, str):
        from sla_engine.core.durations import parse_duration

        try:
            parsed = parse_duration(value, field=field)
        except OverflowError:
            raise invalid(field, value, "is longer than the maximum of 50 years") from None
        if parsed > timedelta(seconds=MAX_DURATION_S):
            raise invalid(field, value, "is longer than the maximum of 50 years")
        return parsed
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, value, 'must be a duration such as "4h", "1h30m" or seconds (number)')
    if not math.isfinite(value) or value < 0:
        raise invalid(field, value, "must be a finite number of seconds >= 0")
    if value > MAX_DURATION_S:
        raise invalid(field, value, "is longer than the maximum of 50 years")
    return timedelta(microseconds=round(value * 1_000_000))


def format_instant(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).isoformat()


def format_many(utc_us: NDArray[np.int64], tz: tzinfo) -> list[str]:
    """ISO 8601 texts in `tz` for epoch microseconds, equal to `format_instant` item by item.

    Offsets are looked up once per distinct UTC day (start and end of the day); the rare day
    holding a zone transition is resolved item by item.
    """
    if utc_us.size == 0:
        return []
    days = utc_us // DAY_US
    unique_days, where = np.unique(days, return_inverse=True)
    first = np.array([_offset_us(int(d) * DAY_US, tz) for d in unique_days], dtype=np.int64)
    last = np.array([_offset_us(int(d) * DAY_US + DAY_US - 1, tz) for d in unique_days])
    offsets = first[where]
    for i in np.flatnonzero((first != last)[where]):
        offsets[i] = _offset_us(int(utc_us[i]), tz)
    local = (utc_us + offsets).astype("datetime64[us]")
    if bool((local.astype(np.int64) % 1_000_000 == 0).all()):
        texts: list[str] = np.datetime_as_string(local, unit="s").tolist()
    else:
        precise = np.datetime_as_string(local, unit="us").tolist()
        texts = [t[:-7] if t.endswith(".000000") else t for t in precise]
    distinct = np.unique(offsets)
    if distinct.size == 1:
        suffix = _offset_text(int(distinct[0]))
        return [t + suffix for t in texts]
    suffixes = {int(o): _offset_text(int(o)) for o in distinct}
    return [t + suffixes[o] for t, o in zip(texts, offsets.tolist(), strict=True)]


def _offset_us(epoch_us: int, tz: tzinfo) -> int:
    offset = from_epoch_us(epoch_us).astimezone(tz).utcoffset()
    return 0 if offset is None else offset // ONE_US


def _offset_text(offset_us: int) -> str:
    sign = "-" if offset_us < 0 else "+"
    seconds, micros = divmod(abs(offset_us), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if secs or micros:
        text += f":{secs:02d}"
    if micros:
        text += f".{micros:06d}"
    return text
