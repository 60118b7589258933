"""Calendar versions (docs/CALENDARS.md): several definitions, each in force from an instant on.

A versioned calendar's open set at instant t is that of the version in force at t. Per UTC
year it is the union of each version's own open intervals clipped to the version's span
[effective_from, next effective_from), merged, so open time on both sides of a boundary is
one interval. `VersionedYears` compiles exactly that from the versions' own (cached) year
lists; the timeline's runs and indexes then work unchanged, at the same per-call cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from sla_engine.core.calendar_spec import CalendarSpec
from sla_engine.core.open_set import Interval, merge_intervals, year_start_us


class CalendarVersion(NamedTuple):
    """One version: in force from `effective_from` (None for the first: from all time)."""

    effective_from: datetime | None
    spec: CalendarSpec


class YearSource(Protocol):
    def year_intervals(self, year: int) -> list[Interval]:
        """The open intervals within UTC year `year`, sorted and merged."""
        ...


def clip_intervals(intervals: Sequence[Interval], lo: int, hi: int) -> list[Interval]:
    """The parts of sorted, disjoint `intervals` inside [lo, hi)."""
    clipped = []
    for start, end in intervals:
        if end <= lo:
            continue
        if start >= hi:
            break
        clipped.append((max(start, lo), min(end, hi)))
    return clipped


class VersionedYears:
    """Compiles a UTC year of a versioned calendar from its versions' year lists.

    `sources[i]` is in force from `bounds[i - 1]` (microseconds; the first from all time) to
    `bounds[i]`; `bounds` is strictly increasing and one shorter than `sources`.
    """

    def __init__(self, sources: Sequence[YearSource], bounds: Sequence[int]) -> None:
        assert len(bounds) == len(sources) - 1
        self.sources = tuple(sources)
        self.bounds = tuple(bounds)

    def compile(self, year: int) -> list[Interval]:
        lo, hi = year_start_us(year), year_start_us(year + 1)
        edges = (lo, *self.bounds, hi)
        pieces: list[Interval] = []
        for index, source in enumerate(self.sources):
            start, end = max(lo, edges[index]), min(hi, edges[index + 1])
            if start < end:  # versions not in force this year are not compiled
                pieces += clip_intervals(source.year_intervals(year), start, end)
        return merge_intervals(pieces)
