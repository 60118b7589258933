"""Business-time arithmetic in integer microseconds over a calendar's compiled open set.

Instants are integer microseconds since the Unix epoch (UTC), so business time is exact.

- `YearCompiler` (`open_set.py`): the open intervals of one spec within one UTC year; for a
  versioned calendar, `VersionedYears` (`calendar_versions.py`) stitches its versions' years.
- `Run` (`interval_run.py`): contiguous compiled years as flat arrays, with which the
  business clock B(t) is one bisection; `RunCache` (`run_cache.py`) compiles and keeps them.
- `Timeline` (here): extends runs (a year at a time, or by the estimated number of years a
  long duration needs, within `SearchLimits`, `search_limits.py`) and answers add /
  subtract / elapsed / ... in microseconds.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

from sla_engine.core.calendar_spec import CalendarSpec
from sla_engine.core.calendar_versions import VersionedYears
from sla_engine.core.grid_index import GridIndex, Int64Array
from sla_engine.core.interval_run import Run
from sla_engine.core.open_set import Interval, YearCompiler, utc_year
from sla_engine.core.run_cache import FIRST_YEAR, LAST_YEAR, RunCache, YearCompiling
from sla_engine.core.search_limits import SearchLimits

__all__ = ("GridIndex", "Int64Array", "Timeline")


class Timeline:
    """Business-time arithmetic over a spec, compiled lazily per UTC year and cached.

    `Timeline.versioned` gives the same over several versions; then `spec`
    is the latest version's, and names the calendar in error messages.
    """

    def __init__(self, spec: CalendarSpec) -> None:
        self._setup(YearCompiler(spec), [spec], [])

    @classmethod
    def versioned(cls, first: Timeline, later: Sequence[tuple[int, Timeline]]) -> Timeline:
        """`first` before `later[0][0]` (microseconds), then each later timeline from its
        instant on. The versions' compiled years are shared with (and cached by) them."""
        if not later:
            return first
        timeline = cls.__new__(cls)
        bounds = [at for at, _ in later]
        sources = [first, *(t for _, t in later)]
        compiler = VersionedYears([t.runs for t in sources], bounds)
        timeline._setup(compiler, [t.spec for t in sources], bounds)
        return timeline

    def _setup(self, compiler: YearCompiling, specs: list[CalendarSpec], bounds: list[int]) -> None:
        self.spec = specs[-1]
        self.runs = RunCache(compiler, self.spec.source)
        self._limits = SearchLimits(specs, bounds)
        self._last = Run.build(LAST_YEAR + 1, LAST_YEAR, [])  # empty until the first query

    def compiled_years(self) -> list[int]:
        return self.runs.compiled_years()

    def _extend_forward(self, run: Run, from_year: int, t: int, missing: int = 0) -> Run:
        step = self._limits.years_after(run, from_year, t, missing)
        return self.runs.covering(run.first_year, min(run.last_year + step, LAST_YEAR + 1))

    def _extend_backward(self, run: Run, from_year: int, t: int, missing: int = 0) -> Run:
        step = self._limits.years_before(run, from_year, t, missing)
        return self.runs.covering(max(run.first_year - step, FIRST_YEAR - 1), run.last_year)

    # -- scalar queries (microseconds) -----------------------------------------------------

    def add(self, start: int, duration: int) -> int:
        """Latest t with business time [start, t) == duration: sup{t >= start ...}."""
        run = self._last
        if not run.lo <= start < run.hi:
            run = self._last = self.runs.at(start)
        starts = run.start_list
        i = bisect_right(starts, start) - 1
        if i < 0:
            target = duration
        else:
            spent = start - starts[i]
            length = run.end_list[i] - starts[i]
            target = run.cum_list[i] + (spent if spent < length else length) + duration
        cum = run.cum_list
        if target >= run.total:
            self._limits.check_opens("add")
            year = utc_year(start)
            while target >= run.total:
                run = self._extend_forward(run, year, start, target - run.total)
                target = run.business(start) + duration
            self._last = run
            cum = run.cum_list
        i = bisect_right(cum, target) - 1
        return run.start_list[i] + target - cum[i]

    def subtract(self, end: int, duration: int) -> int:
        """Earliest s with business time [s, end) == duration (the mirror of `add`)."""
        run = self.runs.at(end)
        target = run.business(end) - duration
        if target <= 0:
            self._limits.check_opens("subtract")
            year = utc_year(end)
            while target <= 0:
                run = self._extend_backward(run, year, end, 1 - target)
                target = run.business(end) - duration
        cum = run.cum_list
        i = bisect_left(cum, target) - 1
        return run.start_list[i] + target - cum[i]

    def elapsed(self, a: int, b: int) -> int:
        """Business time in [a, b); negative when b < a."""
        run = self.runs.between(a, b)
        return run.business(b) - run.business(a)

    def is_open(self, t: int) -> bool:
        run = self.runs.at(t)
        i = bisect_right(run.start_list, t) - 1
        return i >= 0 and t < run.end_list[i]

    def next_open(self, t: int) -> int:
        run = self.runs.at(t)
        year = utc_year(t)
        while True:
            i = bisect_right(run.start_list, t) - 1
            if i >= 0 and t < run.end_list[i]:
                return t
            if i + 1 < len(run.start_list):
                return run.start_list[i + 1]
            self._limits.check_opens("next_open")
            run = self._extend_forward(run, year, t)

    def next_close(self, t: int) -> int:
        run = self.runs.at(t)
        year = utc_year(t)
        while True:
            i = bisect_right(run.end_list, t)
            if i < len(run.end_list) and run.end_list[i] < run.hi:
                return run.end_list[i]
            if i >= len(run.end_list):
                self._limits.check_opens("next_close")
                run = self._extend_forward(run, year, t)
                continue
            self._limits.check_closes(run, year, t)
            run = self.runs.covering(run.first_year, run.last_year + 1)

    def open_intervals(self, a: int, b: int) -> list[Interval]:
        """Open intervals meeting [a, b), clipped to it."""
        if b <= a:
            return []
        run = self.runs.between(a, b - 1)
        first = bisect_right(run.end_list, a)
        last = bisect_left(run.start_list, b)
        return [(max(run.start_list[i], a), min(run.end_list[i], b)) for i in range(first, last)]

    # -- vectorised queries ----------------------------------------------------------------

    def add_many(self, starts: Int64Array, durations: Int64Array | int) -> Int64Array:
        if starts.size == 0:
            return np.empty(starts.shape, dtype=np.int64)
        latest = int(starts.max())
        run = self.runs.between(int(starts.min()), latest)
        target = run.business_many(starts) + durations
        top = int(target.max())
        if top >= run.total:
            self._limits.check_opens("add_many")
            year = utc_year(latest)
            while top >= run.total:
                run = self._extend_forward(run, year, latest, top - run.total)
                target = run.business_many(starts) + durations
                top = int(target.max())
        i = run.cum_index.search_right(target)
        i -= 1
        result: Int64Array = run.starts[i] + (target - run.cum[i])
        return result

    def elapsed_many(self, a: Int64Array, b: Int64Array) -> Int64Array:
        if a.size == 0 and b.size == 0:
            return np.empty(np.broadcast(a, b).shape, dtype=np.int64)
        lo = min(int(a.min()), int(b.min()))
        hi = max(int(a.max()), int(b.max()))
        run = self.runs.between(lo, hi)
        result: Int64Array = run.business_many(b) - run.business_many(a)
        return result
