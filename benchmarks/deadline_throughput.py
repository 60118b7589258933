"""Deadline throughput: sla_engine against businesstimedelta and pandas, same starts, same run.

Workload: random start instants in 2026 (fixed seed, whole minutes so that round starts such
as 13:00 occur, as with imported or scheduled tickets) on a calendar with one weekly window
per weekday (default `smartertools`: Mon-Fri 08:00-17:00 America/Phoenix, US holidays, AZ),
each +4h and +400h of business time. Contenders:

- sla_engine `Calendar.add`, one call per start (aware datetimes in, aware datetimes out);
- sla_engine `Calendar.add_many`, vectorised over `--many` starts (datetime64[us] UTC);
- businesstimedelta: `Rules([WorkDayRule(08:00-17:00, Mon-Fri), HolidayRule(holidays)])`
  plus `BusinessTimeDelta`, fed naive local wall-clock datetimes (its default zone is UTC, so
  a naive value is read as wall-clock time: exact for a zone without DST such as Phoenix);
- pandas `CustomBusinessHour(start, end, holidays=..., weekmask=...)` added to a naive local
  `DatetimeIndex` (pandas applies it element by element).

The same run times `Calendar.add` and `add_many` on the calendar with `--versions` versions
(SPEC section 6: its hours change on the first of each month from February 2026, so the
starts meet every version), once in the calendar's zone and once with every other version in
a zone of its own (America/Denver), and reports the slowdown against the single version, timed
again beside them from a fresh (uncompiled) copy.

Both peers get the holiday dates of the calendar file's `[holidays]` section from the same
`holidays` package, so they see the same holidays unless the file has `[dates]` overrides or
`[[closures]]`, which they cannot express. Slow peers run on the first `--slow-subset` starts
only (the table says so). Every peer answer that differs from sla_engine's is classified.

Usage: python benchmarks/deadline_throughput.py [--quick] [--starts N] [--many N]
       [--slow-subset N] [--calendar NAME] [--seed N] [--repeat N] [--min-time S]
       [--versions N]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from sla_engine import load_calendar
from sla_engine.core.calendar import Calendar

T = TypeVar("T")
US = timedelta(microseconds=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BUDGETS = (timedelta(hours=4), timedelta(hours=400))

SAME_BUSINESS_TIME_CLOSING = "peer stops on the closing time; sla_engine moves to the next opening"
CALENDAR_DIFFERS = "the peer's calendar differs on a date in the span (holiday set or overrides)"
DST_WALL_CLOCK = "peer counts wall-clock hours across a DST change"
PEER_EARLY_OPEN = "peer answers at an opening where sla_engine answers at the closing before"
OTHER = "other (unexplained)"


# ---------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class WeeklyHours:
    """What both peers can model: one window on some weekdays, minus whole-day holidays."""

    opens: clock_time
    closes: clock_time
    weekdays: tuple[int, ...]
    holidays: frozenset[date]
    has_overrides: bool

    def open_time_on(self, day: date) -> timedelta:
        if day.weekday() not in self.weekdays or day in self.holidays:
            return timedelta()
        return datetime.combine(day, self.closes) - datetime.combine(day, self.opens)


def weekly_hours(cal: Calendar, years: range) -> WeeklyHours:
    """The calendar file's weekly hours and holidays, as the peers can model them."""
    import holidays as holiday_lib

    spec = cal.spec
    distinct = {windows for windows in spec.hours if windows}
    if len(distinct) != 1 or len(next(iter(distinct))) != 1:
        raise SystemExit(f"{cal.path}: the peers can model only one window shared by all weekdays")
    window = next(iter(distinct))[0]
    if window.end >= timedelta(days=1):
        raise SystemExit(f"{cal.path}: the peers cannot model a window reaching midnight")
    midnight = datetime(2000, 1, 1)
    holiday_dates: frozenset[date] = frozenset()
    if spec.holidays is not None and spec.holidays.country is not None:
        table = holiday_lib.country_holidays(
            spec.holidays.country,
            subdiv=spec.holidays.subdiv,
            categories=spec.holidays.categories,
            years=list(years),
        )
        holiday_dates = frozenset(table.keys())
    return WeeklyHours(
        opens=(midnight + window.start).time(),
        closes=(midnight + window.end).time(),
        weekdays=tuple(i for i, windows in enumerate(spec.hours) if windows),
        holidays=holiday_dates,
        has_overrides=bool(spec.dates)
        or bool(spec.closures)
        or bool(spec.holidays and spec.holidays.ics),
    )


@dataclass(frozen=True)
class Workload:
    starts: list[datetime]  # aware, in the calendar's zone
    starts_utc: np.ndarray  # datetime64[us]

    @property
    def naive_local(self) -> list[datetime]:
        return [s.replace(tzinfo=None) for s in self.starts]


def random_instants(count: int, zone: ZoneInfo, seed: int) -> np.ndarray:
    """`count` whole-minute instants in local year 2026 (UTC datetime64[us]), fixed seed."""
    rng = np.random.default_rng(seed)
    year_start = datetime(2026, 1, 1, tzinfo=zone)
    minutes = (datetime(2027, 1, 1, tzinfo=zone) - year_start) // timedelta(minutes=1)
    offsets = rng.integers(0, minutes, size=count)
    utc_start = np.datetime64(year_start.astimezone(UTC).replace(tzinfo=None), "us")
    result: np.ndarray = utc_start + offsets.astype("timedelta64[m]").astype("timedelta64[us]")
    return result


def workload(starts_utc: np.ndarray, zone: ZoneInfo) -> Workload:
    return Workload([to_aware(value, zone) for value in starts_utc], starts_utc)


def to_aware(value: np.datetime64, zone: ZoneInfo) -> datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return (datetime(1970, 1, 1, tzinfo=UTC) + micros * US).astimezone(zone)


def utc64(values: Sequence[datetime]) -> np.ndarray:
    return np.array([v.astimezone(UTC).replace(tzinfo=None) for v in values], "datetime64[us]")


def naive_local_to_utc64(values: Sequence[datetime], zone: ZoneInfo) -> np.ndarray:
    return utc64([v.replace(tzinfo=zone) for v in values])


# ---------------------------------------------------------------------------- contenders


@dataclass
class Run:
    """One contender on one budget: answers as UTC datetime64[us] and the time they took."""

    name: str
    budget: timedelta
    count: int
    seconds: float
    answers: np.ndarray
    note: str = ""
    differences: Counter[str] = field(default_factory=Counter)
    compared: int = 0
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


REPEAT = 1  # at least this many timed runs per contender (--repeat)
MIN_TIME = 1.0  # seconds: short runs repeat until this much was timed (as timeit does)
MAX_RUNS = 20
WARMUP = 200  # starts run untimed first by every contender (caches, lazy set-up)


def timed(fn: Callable[[], T], warmup: Callable[[], object]) -> tuple[T, float]:
    """The result of `fn` and its best CPU time over repeated runs, after one `warmup()`.

    CPU time of this (single-threaded) process, not wall time: on a shared machine other
    processes taking the CPU would otherwise make long runs look slower than short ones.
    Every contender is timed the same way: at least REPEAT runs, and more (up to MAX_RUNS)
    while less than MIN_TIME has been timed. The garbage collector is off while timing, as
    in `timeit`.
    """
    warmup()
    best = float("inf")
    spent = 0.0
    runs = 0
    while runs < REPEAT or (spent < MIN_TIME and runs < MAX_RUNS):
        gc.collect()
        gc.disable()
        try:
            began = time.process_time()
            result = fn()
            took = time.process_time() - began
        finally:
            gc.enable()
        best, spent, runs = min(best, took), spent + took, runs + 1
    return result, best


def run_sla_scalar(cal: Calendar, work: Workload, budget: timedelta) -> Run:
    add = cal.add
    answers, seconds = timed(
        lambda: [add(s, budget) for s in work.starts],
        lambda: [add(s, budget) for s in work.starts[:WARMUP]],
    )
    return Run("sla_engine Calendar.add", budget, len(answers), seconds, utc64(answers))


def run_sla_many(cal: Calendar, starts_utc: np.ndarray, budget: timedelta) -> Run:
    durations = np.full(len(starts_utc), np.timedelta64(budget // US, "us"))
    answers, seconds = timed(
        lambda: cal.add_many(starts_utc, durations),
        lambda: cal.add_many(starts_utc[:WARMUP], durations[:WARMUP]),
    )
    return Run("sla_engine add_many", budget, len(starts_utc), seconds, np.asarray(answers))


def run_businesstimedelta(
    hours: WeeklyHours, work: Workload, budget: timedelta, zone: ZoneInfo
) -> Run:
    import businesstimedelta as btd

    rules = btd.Rules(
        [
            btd.WorkDayRule(
                start_time=hours.opens, end_time=hours.closes, working_days=list(hours.weekdays)
            ),
            btd.HolidayRule(hours.holidays),
        ]
    )
    delta = btd.BusinessTimeDelta(rules, timedelta=budget)
    starts = work.naive_local
    answers, seconds = timed(
        lambda: [s + delta for s in starts], lambda: [s + delta for s in starts[:WARMUP]]
    )
    naive = [a.replace(tzinfo=None) for a in answers]  # it returns UTC-tagged wall-clock times
    return Run("businesstimedelta", budget, len(starts), seconds, naive_local_to_utc64(naive, zone))


def run_pandas(hours: WeeklyHours, work: Workload, budget: timedelta, zone: ZoneInfo) -> Run:
    import pandas as pd

    weekmask = " ".join(WEEKDAYS[i] for i in hours.weekdays)
    offset = pd.offsets.CustomBusinessHour(
        n=int(budget / timedelta(hours=1)),
        start=hours.opens.strftime("%H:%M"),
        end=hours.closes.strftime("%H:%M"),
        holidays=sorted(hours.holidays),
        weekmask=weekmask,
    )
    index = pd.DatetimeIndex(work.naive_local)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        answers, seconds = timed(lambda: index + offset, lambda: index[:WARMUP] + offset)
    aware = answers.tz_localize(str(zone), ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    values = aware.tz_localize(None).to_numpy().astype("datetime64[us]")
    return Run("pandas CustomBusinessHour", budget, len(index), seconds, values)


def versioned_like(cal: Calendar, count: int, other_zone: str | None = None) -> Calendar:
    """`cal` with `count - 1` changes of hours: a new shift on the first of each month from
    February 2026 (windows moved by 0, 30 or 60 minutes and shortened by 0 or 30), every other
    version in `other_zone` when given."""
    versioned = cal
    for index in range(1, count):
        shift = timedelta(minutes=30 * (index % 3))
        cut = timedelta(minutes=30 * (index % 2))
        hours = tuple(
            tuple(
                dataclasses.replace(w, start=w.start + shift, end=w.end + shift - cut) for w in day
            )
            for day in cal.spec.hours
        )
        zone = cal.tz if other_zone is None or index % 2 == 0 else ZoneInfo(other_zone)
        spec = dataclasses.replace(
            cal.spec, hours=hours, timezone=zone, title=f"{cal.spec.title}, version {index + 1}"
        )
        month = datetime(2026 + index // 12, 1 + index % 12, 1, tzinfo=cal.tz)
        versioned = versioned.with_version(month, Calendar(spec, name=cal.name))
    return versioned


@dataclass
class VersionedRuns:
    label: str
    cold_ms: float
    scalar: dict[timedelta, Run]
    many: dict[timedelta, Run]


def run_versioned(
    label: str, cal: Calendar, work: Workload, many: np.ndarray, shared: int
) -> VersionedRuns:
    began = time.perf_counter()
    cal.add(work.starts[0], BUDGETS[0])
    cal.add_many(many[:1], BUDGETS[0])
    cold = time.perf_counter() - began
    runs = VersionedRuns(label, cold * 1000, {}, {})
    for budget in BUDGETS:
        runs.scalar[budget] = run_sla_scalar(cal, work, budget)
        runs.many[budget] = run_sla_many(cal, many, budget)
        scalar, vectorised = runs.scalar[budget].answers, runs.many[budget].answers
        mismatch = int(np.count_nonzero(vectorised[:shared] != scalar[:shared]))
        if mismatch:
            runs.many[budget].note = f"  ({mismatch} differ from Calendar.add)"
    return runs


def render_versions(base: VersionedRuns, others: list[VersionedRuns]) -> str:
    head = (
        f"{'budget':>6}  {'calendar':<40} {'cold ms':>7} {'add/s':>11} {'slower':>7} "
        f"{'add_many/s':>12} {'slower':>7}"
    )
    lines = [head, "-" * len(head)]
    for budget in BUDGETS:
        hours = int(budget / timedelta(hours=1))
        for runs in [base, *others]:
            scalar, many = runs.scalar[budget], runs.many[budget]
            slow_scalar = base.scalar[budget].rate / scalar.rate
            slow_many = base.many[budget].rate / many.rate
            lines.append(
                f"{'+' + str(hours) + 'h':>6}  {runs.label:<40} {runs.cold_ms:>7.0f} "
                f"{scalar.rate:>11,.0f} "
                f"{slow_scalar:>6.2f}x {many.rate:>12,.0f} {slow_many:>6.2f}x{many.note}"
            )
    return "\n".join(lines)


def render_version_targets(base: VersionedRuns, others: list[VersionedRuns]) -> str:
    """Issue 11's targets: 10 versions cost at most 1.5x (add) and 2x (add_many)."""
    lines = []
    for runs in others:
        for budget in BUDGETS:
            hours = int(budget / timedelta(hours=1))
            for what, mine, theirs, most in (
                ("Calendar.add", runs.scalar[budget], base.scalar[budget], 1.5),
                ("add_many", runs.many[budget], base.many[budget], 2.0),
            ):
                ratio = theirs.rate / mine.rate
                verdict = "met" if ratio <= most else "MISSED"
                lines.append(
                    f"  {what} on {runs.label} within {most}x of one version "
                    f"at +{hours}h: {ratio:.2f}x {verdict}"
                )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- differences


def classify(
    cal: Calendar, hours: WeeklyHours, start: datetime, ours: datetime, theirs: datetime
) -> str:
    """Why a peer's deadline differs from sla_engine's, judged with sla_engine's calendar."""
    if (
        theirs < ours
        and cal.elapsed(theirs, ours) == timedelta()
        and not cal.is_open(theirs)
        and cal.is_open(theirs - US)
    ):
        return SAME_BUSINESS_TIME_CLOSING
    if theirs > ours and cal.elapsed(ours, theirs) == timedelta() and cal.is_open(theirs):
        return PEER_EARLY_OPEN
    first = start.astimezone(cal.tz).date()
    last = max(ours, theirs).astimezone(cal.tz).date()
    day = first
    while day <= last:
        midnight = datetime.combine(day, clock_time(0), tzinfo=cal.tz)
        ours_open = cal.elapsed(midnight, midnight + timedelta(days=1))
        if ours_open != hours.open_time_on(day):
            return CALENDAR_DIFFERS
        day += timedelta(days=1)
    if start.utcoffset() != max(ours, theirs).astimezone(cal.tz).utcoffset():
        return DST_WALL_CLOCK
    return OTHER


def compare(cal: Calendar, hours: WeeklyHours, work: Workload, ours: Run, peer: Run) -> None:
    mine = ours.answers[: peer.count]
    theirs = peer.answers
    peer.compared = peer.count
    for i in np.flatnonzero(mine != theirs):
        ours_at = to_aware(mine[i], cal.tz)
        if np.isnat(theirs[i]):
            kind = "peer answer is not a valid local time (NaT)"
        else:
            kind = classify(cal, hours, work.starts[i], ours_at, to_aware(theirs[i], cal.tz))
        peer.differences[kind] += 1
        if kind not in peer.examples:
            theirs_text = "NaT" if np.isnat(theirs[i]) else to_aware(theirs[i], cal.tz).isoformat()
            peer.examples[kind] = (
                f"start {work.starts[i].isoformat()}: sla_engine {ours_at.isoformat()}, "
                f"peer {theirs_text}"
            )


# ---------------------------------------------------------------------------- report


def render_table(runs: list[Run], scalar: dict[timedelta, Run], many: dict[timedelta, Run]) -> str:
    head = (
        f"{'budget':>6}  {'contender':<27} {'starts':>9} {'deadlines/s':>13} "
        f"{'scalar vs':>10} {'add_many vs':>12}  {'differ from sla_engine':<24}".rstrip()
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        hours = int(run.budget / timedelta(hours=1))
        if run.name.startswith("sla_engine"):
            ratio_scalar = ratio_many = "-"
            differ = "-"
        else:
            ratio_scalar = f"{scalar[run.budget].rate / run.rate:,.1f}x"
            ratio_many = f"{many[run.budget].rate / run.rate:,.0f}x"
            differ = f"{sum(run.differences.values()):,} of {run.compared:,}"
        lines.append(
            f"{'+' + str(hours) + 'h':>6}  {run.name:<27} {run.count:>9,} {run.rate:>13,.0f} "
            f"{ratio_scalar:>10} {ratio_many:>12}  {differ:<24}{run.note}".rstrip()
        )
    return "\n".join(lines)


def render_differences(runs: list[Run]) -> str:
    lines = []
    for run in runs:
        if run.name.startswith("sla_engine"):
            continue
        hours = int(run.budget / timedelta(hours=1))
        total = sum(run.differences.values())
        lines.append(f"{run.name} +{hours}h: {total:,} of {run.compared:,} answers differ")
        for kind, count in run.differences.most_common():
            lines.append(f"  {count:>7,}  {kind}")
            lines.append(f"           e.g. {run.examples[kind]}")
    return "\n".join(lines)


def render_targets(
    runs: list[Run], scalar: dict[timedelta, Run], many: dict[timedelta, Run]
) -> str:
    """The project's throughput targets (issue 2 item 7), judged on this run's numbers."""
    lines = ["Targets (informational; timings depend on the machine and its load):"]
    for run in runs:
        if run.name != "businesstimedelta":
            continue
        hours = int(run.budget / timedelta(hours=1))
        wanted = 20 if hours <= 24 else 500
        ratio = scalar[run.budget].rate / run.rate
        verdict = "met" if ratio >= wanted else "MISSED"
        lines.append(
            f"  Calendar.add >= {wanted}x businesstimedelta at +{hours}h: {ratio:,.1f}x {verdict}"
        )
    for budget, run in many.items():
        hours = int(budget / timedelta(hours=1))
        verdict = "met" if run.rate >= 5_000_000 else "MISSED"
        lines.append(f"  add_many >= 5,000,000/s at +{hours}h: {run.rate:,.0f}/s {verdict}")
    return "\n".join(lines)


EXPLANATIONS = """\
Kinds of difference (each differing answer is classified with sla_engine's own calendar):
- closing time: where the budget runs out exactly at a closing time, businesstimedelta
  answers that closing time (e.g. Fri 17:00); sla_engine answers the next opening (Mon 08:00),
  the latest instant with the same business time (SPEC section 1, as zendesk's biz). Both
  spend the same business time; pandas CustomBusinessHour also rolls to the next opening.
- calendar differs: a date in the span is open in one model and closed in the other. The peers
  get the same `holidays` dates; they cannot express the file's [dates] overrides or
  [[closures]], and they only know whole-day holidays.
- DST: peers fed naive wall-clock times count wall-clock hours, so across a DST change they are
  off by the shift. America/Phoenix has no DST, so none are expected here.
- other: anything the rules above do not explain (an example is printed)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="smaller run (defaults 2000/100000/200, 0.3 s)"
    )
    parser.add_argument("--starts", type=int, help="random starts for scalar runs (20000)")
    parser.add_argument("--many", type=int, help="starts for add_many (1000000)")
    parser.add_argument("--slow-subset", type=int, help="starts for slow peers at +400h (2000)")
    parser.add_argument("--calendar", default="smartertools")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=1, help="at least N timed runs each (1)")
    parser.add_argument("--min-time", type=float, help="seconds timed per contender (1.0)")
    parser.add_argument(
        "--versions", type=int, default=10, help="versions of the versioned calendar (10)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.starts = args.starts or (2_000 if quick else 20_000)
    args.many = args.many or (100_000 if quick else 1_000_000)
    args.slow_subset = min(args.slow_subset or (200 if quick else 2_000), args.starts)
    if args.min_time is None:
        args.min_time = 0.3 if quick else 1.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global REPEAT, MIN_TIME
    args = parse_args(argv)
    REPEAT = max(1, args.repeat)
    MIN_TIME = max(0.0, args.min_time)
    cal = load_calendar(args.calendar)
    zone = cal.tz
    hours = weekly_hours(cal, range(2025, 2030))
    work = workload(random_instants(args.starts, zone, args.seed), zone)
    many = random_instants(args.many, zone, args.seed + 1)
    shared = min(args.many, args.starts)
    many[:shared] = work.starts_utc[:shared]
    subset = Workload(work.starts[: args.slow_subset], work.starts_utc[: args.slow_subset])

    began = time.perf_counter()
    cal.add(work.starts[0], BUDGETS[0])  # compiles the timeline; timed apart, once
    cold = time.perf_counter() - began
    print(
        f"deadline throughput on calendar {cal.name!r} ({cal.title}, {zone}); seed {args.seed}; "
        f"{args.starts:,} random whole-minute starts in 2026 (add_many: {args.many:,}); "
        f"first call (cold) {cold * 1000:.1f} ms; each contender: {WARMUP} starts untimed, "
        f"then the best of >= {REPEAT} timed run(s) (more, up to {MAX_RUNS}, until "
        f"{MIN_TIME:g} s was timed), GC off while timing (as timeit); deadlines/s per CPU "
        "second of this process"
    )
    if hours.has_overrides:
        print("note: the calendar has [dates]/[[closures]] that the peers cannot express")

    runs: list[Run] = []
    scalar: dict[timedelta, Run] = {}
    vectorised: dict[timedelta, Run] = {}
    for budget in BUDGETS:
        scalar[budget] = run_sla_scalar(cal, work, budget)
        vectorised[budget] = run_sla_many(cal, many, budget)
        mismatch = int(
            np.count_nonzero(vectorised[budget].answers[:shared] != scalar[budget].answers[:shared])
        )
        vectorised[budget].note = f"  ({mismatch} differ from Calendar.add)" if mismatch else ""
        runs += [scalar[budget], vectorised[budget]]
        slow = budget > timedelta(hours=24)
        peer_work = subset if slow else work
        for runner in (run_businesstimedelta, run_pandas):
            peer = runner(hours, peer_work, budget, zone)
            if slow and peer.count < args.starts:
                peer.note = f"  (first {peer.count:,} starts only: slow)"
            compare(cal, hours, work, scalar[budget], peer)
            runs.append(peer)

    count = max(2, args.versions)
    # a fresh calendar for the single version too: all three start with nothing compiled
    fresh = Calendar(cal.spec, name=cal.name, path=cal.path)
    base = run_versioned("one version (the file)", fresh, work, many, shared)
    versioned = [
        run_versioned(
            f"{count} versions, one zone", versioned_like(cal, count), work, many, shared
        ),
        run_versioned(
            f"{count} versions, alternate zones (Denver)",
            versioned_like(cal, count, "America/Denver"),
            work,
            many,
            shared,
        ),
    ]

    print()
    print(render_table(runs, scalar, vectorised))
    print()
    print(render_differences(runs))
    print()
    print(
        "Versioned calendars (hours change on the 1st of each month from February 2026; "
        "same starts; slower = one version's rate / this rate):"
    )
    print(render_versions(base, versioned))
    print()
    print(render_targets(runs, scalar, vectorised))
    print(render_version_targets(base, versioned))
    print()
    print(EXPLANATIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
