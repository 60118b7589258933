"""`Run`: contiguous compiled UTC years of a calendar as flat interval arrays.

`starts`, `ends` and `cum` (business time before each interval, counted from the run's first
interval) make the business clock B(t) one bisection, so every timeline query is O(log n)
whatever the duration. The same arrays as Python lists serve the scalar queries, which are
faster on lists than on numpy arrays.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sla_engine.core.grid_index import GridIndex, Int64Array
from sla_engine.core.open_set import Interval, year_start_us


@dataclass(frozen=True)
class Run:
    """Contiguous compiled UTC years [first_year, last_year] as flat interval arrays."""

    first_year: int
    last_year: int
    lo: int
    hi: int
    starts: Int64Array
    ends: Int64Array
    cum: Int64Array
    total: int
    start_list: list[int]
    end_list: list[int]
    cum_list: list[int]

    @classmethod
    def build(cls, first_year: int, last_year: int, years: list[list[Interval]]) -> Run:
        pieces = [np.asarray(y, dtype=np.int64).reshape(-1, 2) for y in years]
        flat = np.concatenate(pieces) if pieces else np.empty((0, 2), dtype=np.int64)
        starts, ends = flat[:, 0].copy(), flat[:, 1].copy()
        if len(starts) > 1:  # join intervals cut at year boundaries
            keep = np.ones(len(starts), dtype=bool)
            keep[1:] = starts[1:] != ends[:-1]
            group = np.cumsum(keep) - 1
            new_ends = np.empty(int(keep.sum()), dtype=np.int64)
            new_ends[group] = ends
            starts, ends = starts[keep], new_ends
        lengths = ends - starts
        cum = np.zeros(len(starts), dtype=np.int64)
        if len(starts) > 1:
            np.cumsum(lengths[:-1], out=cum[1:])
        total = int(lengths.sum())
        return cls(
            first_year,
            last_year,
            year_start_us(first_year),
            year_start_us(last_year + 1),
            starts,
            ends,
            cum,
            total,
            starts.tolist(),
            ends.tolist(),
            cum.tolist(),
        )

    def business(self, t: int) -> int:
        """B(t): business time from the run's start to t."""
        i = bisect_right(self.start_list, t) - 1
        if i < 0:
            return 0
        start = self.start_list[i]
        return self.cum_list[i] + min(t - start, self.end_list[i] - start)

    @cached_property
    def start_index(self) -> GridIndex:
        return GridIndex(self.starts)

    @cached_property
    def cum_index(self) -> GridIndex:
        return GridIndex(self.cum)

    def business_many(self, t: Int64Array) -> Int64Array:
        if len(self.starts) == 0:
            return np.zeros(t.shape, dtype=np.int64)
        i = self.start_index.search_right(t)
        i -= 1
        np.maximum(i, 0, out=i)
        start = self.starts[i]
        spent: Int64Array = np.clip(t - start, 0, self.ends[i] - start)
        return self.cum[i] + spent
