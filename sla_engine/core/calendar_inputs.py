"""The calendar API's arguments as exact integer microseconds, checked.

A value of the wrong type or a naive datetime is a `TypeError`, a negative duration or a NaT
an `InputError`; each names the argument. Arrays are numpy datetime64 of any unit (read as
UTC) or aware datetimes, and timedelta64 of any fixed unit or timedeltas; units finer than a
microsecond are floored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from sla_engine.core.grid_index import Int64Array
from sla_engine.core.times import EPOCH, ONE_US, epoch_us, timedelta_us
from sla_engine.core.zoned_instant import ZonedInstant
from sla_engine.errors import InputError

Instants = npt.ArrayLike | Sequence[datetime]
"""`add_many` / `elapsed_many` instants: a datetime64 array (any unit, UTC) or aware datetimes."""
Durations = timedelta | npt.ArrayLike | Sequence[timedelta]
"""`add_many` durations: one timedelta (or timedelta64), or one per start."""

PLAIN_TYPES = (datetime, ZonedInstant)
"""Datetime types whose subtraction is datetime's own (the fast path; pendulum's is not)."""
_SUB_MICROSECOND = ("ns", "ps", "fs", "as")  # floored to whole microseconds


def instant_us(value: object, argument: str) -> int:
    """An aware datetime (stdlib or pendulum) as exact microseconds since the epoch."""
    if not isinstance(value, datetime):
        raise TypeError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    if type(value) in PLAIN_TYPES:
        try:
            return (value - EPOCH) // ONE_US
        except TypeError:
            pass  # naive
    else:
        us = epoch_us(value)
        if us is not None:
            return us
    raise TypeError(f"{argument} must be a timezone-aware datetime, got naive {value!r}")


def duration_us(value: object, argument: str) -> int:
    """A duration >= 0 (timedelta or numpy timedelta64) as microseconds."""
    if isinstance(value, timedelta):
        micros = timedelta_us(value)
    elif isinstance(value, np.timedelta64):
        micros = int(_timedelta64_us(np.asarray(value), argument))
    else:
        raise TypeError(f"{argument} must be a timedelta, got {value!r}")
    if micros < 0:
        raise InputError(
            f"{argument} must not be negative, got {value}", field=argument, value=str(value)
        )
    return micros


def instants_us(values: Instants, argument: str) -> Int64Array:
    """datetime64 values of any unit (read as UTC) or aware datetimes, as microseconds."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        if np.isnat(array).any():
            raise InputError(f"{argument} contains NaT", field=argument, value="NaT")
        unit = np.datetime_data(array.dtype)[0]
        if unit in _SUB_MICROSECOND:
            ns = array.astype("datetime64[ns]").view(np.int64)
            floored: Int64Array = ns // 1000
            return floored
        return array.astype("datetime64[us]").view(np.int64)
    if array.dtype == object:
        flat = [instant_us(v, argument) for v in array.ravel()]
        return np.asarray(flat, dtype=np.int64).reshape(array.shape)
    if array.size == 0:
        return np.empty(array.shape, dtype=np.int64)
    raise TypeError(f"{argument} must be a numpy datetime64 array, got dtype {array.dtype}")


def durations_us(values: Durations, argument: str) -> Int64Array | int:
    """One duration >= 0 as microseconds, or an array of them (timedelta64 or timedeltas)."""
    if isinstance(values, timedelta | np.timedelta64):
        return duration_us(values, argument)
    array = np.asarray(values)
    if array.dtype.kind == "m":
        micros = _timedelta64_us(array, argument)
    elif array.dtype == object:
        micros = np.asarray(
            [duration_us(v, argument) for v in array.ravel()], dtype=np.int64
        ).reshape(array.shape)
    else:
        raise TypeError(f"{argument} must be a timedelta or a timedelta64 array")
    negative = micros < 0
    if negative.any():
        bad = array.ravel()[int(np.argmax(negative.ravel()))]
        raise InputError(
            f"{argument} must not be negative, got {bad}", field=argument, value=str(bad)
        )
    return micros


def broadcast(a: Int64Array, b: Int64Array, argument: str) -> tuple[Int64Array, Int64Array]:
    """`a` and `b` broadcast to one shape; else an `InputError` naming `argument` (b's)."""
    try:
        first, second = np.broadcast_arrays(a, b)
    except ValueError:
        raise InputError(
            f"{argument}: shape {b.shape} does not match the starts' shape {a.shape}",
            field=argument,
            value=str(b.shape),
        ) from None
    return first, second


def _timedelta64_us(array: npt.NDArray[np.timedelta64], argument: str) -> Int64Array:
    """timedelta64 values of any fixed unit as microseconds (finer units floored)."""
    if np.isnat(array).any():
        raise InputError(f"{argument} contains NaT", field=argument, value="NaT")
    unit = np.datetime_data(array.dtype)[0]
    if unit in ("Y", "M"):
        raise InputError(
            f"{argument}: months and years are not fixed durations (unit {unit!r})",
            field=argument,
            value=str(array.dtype),
        )
    if unit in _SUB_MICROSECOND:
        floored: Int64Array = array.astype("timedelta64[ns]").view(np.int64) // 1000
        return floored
    return array.astype("timedelta64[us]").view(np.int64)
