"""Calendar results: aware datetimes that compare as instants.

Python compares two datetimes of one zone by wall clock, ignoring `fold`, and calls any
inter-zone `==` False when either time falls in a repeated (fall-back) hour (PEP 495). A
deadline at 01:30 EST on the night clocks go back would then differ from the same instant in
UTC. Calendar results must compare as instants, so they are this subclass.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sla_engine.core.times import epoch_us as _utc_us
from sla_engine.core.times import from_epoch_us


class ZonedInstant(datetime):
    """A datetime in a calendar's zone whose comparisons and hash are those of its instant."""

    __slots__ = ()

    @classmethod
    def from_epoch_us(cls, us: int, tz: tzinfo) -> ZonedInstant:
        """The instant `us` (microseconds since the epoch) in `tz`, exactly, in any year
        (`OverflowError` beyond the years datetime supports)."""
        local = from_epoch_us(us).astimezone(tz)
        return cls(
            local.year,
            local.month,
            local.day,
            local.hour,
            local.minute,
            local.second,
            local.microsecond,
            tzinfo=tz,
            fold=local.fold,
        )

    def _pair(self, other: object) -> tuple[int, int] | None:
        if not isinstance(other, datetime):
            return None
        mine, theirs = _utc_us(self), _utc_us(other)
        if mine is None or theirs is None:
            return None
        return mine, theirs

    def __eq__(self, other: object) -> bool:
        pair = self._pair(other)
        if pair is None:
            return datetime.__eq__(self, other) if isinstance(other, datetime) else False
        return pair[0] == pair[1]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __lt__(self, other: datetime) -> bool:  # type: ignore[override]
        pair = self._pair(other)
        return super().__lt__(other) if pair is None else pair[0] < pair[1]

    def __le__(self, other: datetime) -> bool:  # type: ignore[override]
        pair = self._pair(other)
        return super().__le__(other) if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: datetime) -> bool:  # type: ignore[override]
        pair = self._pair(other)
        return super().__gt__(other) if pair is None else pair[0] > pair[1]

    def __ge__(self, other: datetime) -> bool:  # type: ignore[override]
        pair = self._pair(other)
        return super().__ge__(other) if pair is None else pair[0] >= pair[1]

    def __hash__(self) -> int:
        us = _utc_us(self)
        assert us is not None
        return hash(from_epoch_us(us))
