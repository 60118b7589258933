"""A timeline's compiled UTC years and the runs built from them, made lazily and cached.

Years are compiled on first use (by a spec's `YearCompiler`, or a versioned calendar's
`VersionedYears`) and kept; runs of contiguous years are built from them, and runs closer
than `_RUN_GAP` years are joined into one, so that a query spanning them is one bisection.
Safe to share between threads: building takes a lock, reading the current runs does not.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sla_engine.core.interval_run import Run
from sla_engine.core.open_set import Interval, utc_year
from sla_engine.errors import CalendarError

FIRST_YEAR, LAST_YEAR = 2, 9998
_RUN_GAP = 3  # runs closer than this many years are joined into one


class YearCompiling(Protocol):
    def compile(self, year: int) -> list[Interval]:
        """The open intervals within UTC year `year`, sorted and merged."""
        ...


class RunCache:
    """The compiled years and runs of one timeline; `source` names it in error messages."""

    def __init__(self, compiler: YearCompiling, source: str) -> None:
        self._compiler = compiler
        self._source = source
        self._years: dict[int, list[Interval]] = {}
        self._runs: tuple[Run, ...] = ()
        self._lock = threading.RLock()

    def year_intervals(self, year: int) -> list[Interval]:
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise CalendarError(
                f"{self._source}: year {year} is beyond the supported range "
                f"{FIRST_YEAR}..{LAST_YEAR}",
                field="instant",
                value=year,
            )
        with self._lock:
            intervals = self._years.get(year)
            if intervals is None:
                intervals = self._years[year] = self._compiler.compile(year)
            return intervals

    def compiled_years(self) -> list[int]:
        return sorted(self._years)

    def covering(self, first_year: int, last_year: int) -> Run:
        """A run that covers the UTC years [first_year, last_year], compiling as needed."""
        for run in self._runs:
            if run.first_year <= first_year and last_year <= run.last_year:
                return run
        with self._lock:
            for run in self._runs:  # another thread may have built it meanwhile
                if run.first_year <= first_year and last_year <= run.last_year:
                    return run
            lo, hi = first_year, last_year
            kept = list(self._runs)
            joined = True
            while joined:
                joined = False
                for run in kept:
                    if run.first_year - _RUN_GAP <= hi and lo <= run.last_year + _RUN_GAP:
                        lo, hi = min(lo, run.first_year), max(hi, run.last_year)
                        kept.remove(run)
                        joined = True
                        break
            years = [self.year_intervals(y) for y in range(lo, hi + 1)]
            run = Run.build(lo, hi, years)
            self._runs = (*kept, run)
            return run

    def at(self, t: int) -> Run:
        """A run holding instant t (microseconds)."""
        for run in self._runs:
            if run.lo <= t < run.hi:
                return run
        year = utc_year(t)
        return self.covering(year, year)

    def between(self, a: int, b: int) -> Run:
        """A run holding both instants a and b."""
        for run in self._runs:
            if run.lo <= a < run.hi and run.lo <= b < run.hi:
                return run
        return self.covering(utc_year(min(a, b)), utc_year(max(a, b)))
