"""Where a timeline stops looking for open (or closed) time: the `EMPTY_YEARS` bound.

The calendar never ends (rule 5). Since weekly hours repeat, a calendar that stays closed
for `EMPTY_YEARS` whole years beyond its last [dates]/[[closures]] entry (and its last version
change) never opens again: the search stops there with `CalendarError` instead of hanging. The
same bound applies backwards and, for `next_close`, to a calendar that never closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from sla_engine.core.calendar_spec import CalendarSpec
from sla_engine.core.interval_run import Run
from sla_engine.core.open_set import utc_year
from sla_engine.core.times import from_epoch_us
from sla_engine.errors import CalendarError

EMPTY_YEARS = 5


def _never_opens(spec: CalendarSpec) -> bool:
    return not spec.has_weekly_hours and not any(spec.dates.values())


class SearchLimits:
    """The bounds of one timeline's searches; `specs` are its versions' in order (one for a
    plain calendar), `bounds` the instants (microseconds) where later versions begin."""

    def __init__(self, specs: Sequence[CalendarSpec], bounds: Sequence[int]) -> None:
        self.spec = specs[-1]  # names the calendar in error messages
        self.never_opens = all(_never_opens(spec) for spec in specs)
        # the far future is the last version's, the far past the first's
        self.weekly_forward = specs[-1].has_weekly_hours
        self.weekly_backward = specs[0].has_weekly_hours
        years = [y for spec in specs if spec.override_years for y in spec.override_years]
        years += [utc_year(at) for at in bounds]
        self.special = (min(years), max(years)) if years else None

    def check_opens(self, what: str) -> None:
        """A calendar with no open time at all fails at once, whatever the query."""
        if self.never_opens:
            raise CalendarError(
                f"{self.spec.source}: calendar has no open time at all ({what})",
                field="calendar",
                value=self.spec.title,
            )

    def years_after(self, run: Run, from_year: int, t: int, missing: int = 0) -> int:
        """Years to compile after `run` in a search forward from t (in `from_year`) that
        still lacks `missing` business time; `CalendarError` when it never opens again."""
        last_open = utc_year(run.end_list[-1] - 1) if run.end_list else from_year
        reference = max(last_open, from_year)
        if self.special is not None:
            reference = max(reference, self.special[1])
        if run.last_year - reference >= EMPTY_YEARS:
            raise self._no_open("after", t)
        return self._step(run, missing, self.weekly_forward)

    def years_before(self, run: Run, from_year: int, t: int, missing: int = 0) -> int:
        """The mirror of `years_after`, for a search backward from t."""
        first_open = utc_year(run.start_list[0]) if run.start_list else from_year
        reference = min(first_open, from_year)
        if self.special is not None:
            reference = min(reference, self.special[0])
        if reference - run.first_year >= EMPTY_YEARS:
            raise self._no_open("before", t)
        return self._step(run, missing, self.weekly_backward)

    def check_closes(self, run: Run, from_year: int, t: int) -> None:
        """`next_close` from t: open without end for EMPTY_YEARS whole years means never."""
        reference = from_year if self.special is None else max(from_year, self.special[1])
        if run.last_year - reference >= EMPTY_YEARS:
            raise CalendarError(
                f"{self.spec.source}: calendar never closes after {_iso(t)}",
                field="calendar",
                value=self.spec.title,
            )

    def _no_open(self, direction: str, t: int) -> CalendarError:
        return CalendarError(
            f"{self.spec.source}: calendar has no open time {direction} {_iso(t)}",
            field="calendar",
            value=self.spec.title,
        )

    @staticmethod
    def _step(run: Run, missing: int, weekly: bool) -> int:
        """Enough years for `missing` business time at the run's pace.

        Only weekly hours promise open time every year; with [dates] alone the search goes a
        year at a time, so that it stops at the EMPTY_YEARS bound.
        """
        if missing <= 0 or run.total <= 0 or not weekly:
            return 1
        years = run.last_year - run.first_year + 1
        return max(1, ceil(missing * years / run.total))


def _iso(t: int) -> str:
    return from_epoch_us(t).isoformat()
