"""Calendar commands: `deadline`, `elapsed`, `calendars list|show|put|versions`.

Output formats (stable, for scripts and people alike):
- `deadline` prints one ISO 8601 instant with the calendar zone's offset.
- `elapsed` prints business time as `<h>h<m>m<s>s (<seconds> s)`, e.g. `4h0m0s (14400.0 s)`,
  negative (`-4h0m0s (-14400.0 s)`) when `--to` is before `--from`, as `Calendar.elapsed` does.
- `calendars show` prints one line per local date: the date, the weekday, the open windows in
  local wall-clock time (clipped to the date, `24:00` meaning "until midnight") and the day's
  business time; a date without open time reads `closed`. On a date whose UTC offset changes
  (DST), every time carries its offset so repeated wall-clock times stay unambiguous.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sla_engine.cli.app import USAGE_EXIT_CODE, app, error_line
from sla_engine.cli.options import parse_business_duration, parse_date, parse_instant
from sla_engine.core.calendar import Calendar, list_calendars, load_calendar
from sla_engine.core.times import utcnow
from sla_engine.errors import InputError, SlaEngineError

if TYPE_CHECKING:
    from sla_engine.calendar_store.changes import CalendarChanges

SHOW_DEFAULT_DAYS = 7
SHOW_MAX_DAYS = 366

calendars_app = typer.Typer(
    help="List calendars, show their open hours, store versions in the service's database.",
    no_args_is_help=True,
)
app.add_typer(calendars_app, name="calendars")

CalendarOption = Annotated[
    str,
    typer.Option(
        "--calendar",
        "-c",
        help="Calendar name (calendars/NAME.toml, SLA_ENGINE_CALENDARS) or path to a TOML file.",
    ),
]


def format_business_time(value: timedelta) -> str:
    """`4h0m0s (14400.0 s)`: hours, minutes and seconds, then exact seconds (microseconds kept)."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    whole_seconds, fraction = divmod(abs(micros), 1_000_000)
    hours, rest = divmod(whole_seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction_text = f"{fraction:06d}".rstrip("0")
    second_text = f"{seconds}.{fraction_text}" if fraction_text else str(seconds)
    exact = f"{whole_seconds}.{fraction_text or '0'}"
    return f"{sign}{hours}h{minutes}m{second_text}s ({sign}{exact} s)"


@dataclass(frozen=True)
class DayHours:
    """The open windows of one local date, clipped to that date."""

    day: date
    windows: tuple[tuple[datetime, datetime], ...]
    day_start: datetime
    day_end: datetime
    notes: tuple[str, ...] = ()

    @property
    def business_time(self) -> timedelta:
        # via UTC: aware datetimes sharing a tzinfo subtract as wall-clock times
        return sum(
            (end.astimezone(UTC) - start.astimezone(UTC) for start, end in self.windows),
            timedelta(),
        )

    @property
    def offset_changes(self) -> bool:
        return self.day_start.utcoffset() != self.day_end.utcoffset()


def local_midnight(cal: Calendar, day: date) -> datetime:
    """The instant a local date starts (zoneinfo fold=0, as calendar windows are resolved)."""
    return datetime.combine(day, time(0), tzinfo=cal.tz)


class DayNotes:
    """Why a date's hours differ from its weekday's: holiday, `[dates]` override, closure."""

    def __init__(self, cal: Calendar) -> None:
        self.spec = cal.spec
        self.tz = cal.tz
        self.holidays = self.spec.holidays.build() if self.spec.holidays else None

    def closure_instant(self, moment: datetime) -> datetime:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.tz)

    def __call__(self, day: date, start: datetime, end: datetime) -> tuple[str, ...]:
        notes = []
        if day in self.spec.dates:
            notes.append("date override")
        elif self.holidays is not None and day in self.holidays:
            notes.append(f"holiday: {self.holidays.get(day)}")
        for closure in self.spec.closures:
            if (
                self.closure_instant(closure.start) < end
                and self.closure_instant(closure.end) > start
            ):
                notes.append("closure")
                break
        return tuple(notes)


def day_hours(cal: Calendar, first: date, last: date) -> list[DayHours]:
    """Open windows per local date from `first` to `last` inclusive, with notes."""
    notes = DayNotes(cal)
    days = []
    day = first
    while day <= last:
        start = local_midnight(cal, day)
        end = local_midnight(cal, day + timedelta(days=1))
        windows = tuple(
            (s.astimezone(cal.tz), e.astimezone(cal.tz)) for s, e in cal.open_intervals(start, end)
        )
        days.append(DayHours(day, windows, start, end.astimezone(cal.tz), notes(day, start, end)))
        day += timedelta(days=1)
    return days


def _clock(moment: datetime, hours: DayHours) -> str:
    if moment == hours.day_end and moment.date() != hours.day:
        text = "24:00"
    else:
        text = moment.strftime("%H:%M")
        if moment.second or moment.microsecond:
            text += moment.strftime(":%S")
        if moment.microsecond:
            text += f".{moment.microsecond:06d}"
    if hours.offset_changes:
        text += moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
    return text


def render_day(hours: DayHours) -> str:
    """`2026-11-27 Fri  08:00-17:00  (9h0m0s)` or `2026-11-26 Thu  closed  [holiday: ...]`."""
    parts = [f"{hours.day.isoformat()} {hours.day.strftime('%a')}"]
    if hours.windows:
        parts.append(" ".join(f"{_clock(s, hours)}-{_clock(e, hours)}" for s, e in hours.windows))
        parts.append(f"({format_business_time(hours.business_time).split(' ')[0]})")
    else:
        parts.append("closed")
    if hours.notes:
        parts.append(f"[{'; '.join(hours.notes)}]")
    return "  ".join(parts)


@app.command()
def deadline(
    calendar: CalendarOption,
    start: Annotated[str, typer.Option(help="Start instant, ISO 8601 with offset.")],
    duration: Annotated[str, typer.Option(help="Business time, e.g. 4h, 90m, 1h30m, 45s.")],
) -> None:
    """Print when DURATION of business time since START runs out (ISO 8601, calendar zone)."""
    start_at = parse_instant(start, "--start")
    budget = parse_business_duration(duration, "--duration")
    cal = load_calendar(calendar)
    typer.echo(cal.add(start_at, budget).isoformat())


@app.command()
def elapsed(
    calendar: CalendarOption,
    from_: Annotated[str, typer.Option("--from", help="Start instant, ISO 8601 with offset.")],
    to: Annotated[str, typer.Option("--to", help="End instant, ISO 8601 with offset.")],
) -> None:
    """Print the business time between FROM and TO, e.g. `4h0m0s (14400.0 s)`."""
    start_at = parse_instant(from_, "--from")
    end_at = parse_instant(to, "--to")
    cal = load_calendar(calendar)
    typer.echo(format_business_time(cal.elapsed(start_at, end_at)))


@calendars_app.command("list")
def list_command() -> None:
    """List the calendars reachable by name: name, title, time zone.

    A calendar file that does not load is reported as one `error:` line on stderr after the
    list, and the exit code is then 2.
    """
    rows = [("NAME", "TITLE", "TIMEZONE")]
    problems = []
    for name in list_calendars():
        try:
            cal = load_calendar(name)
        except SlaEngineError as exc:
            problems.append(error_line(exc))
            continue
        rows.append((name, cal.title, str(cal.tz)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, title, zone in rows:
        typer.echo(f"{name.ljust(widths[0])}  {title.ljust(widths[1])}  {zone}")
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(USAGE_EXIT_CODE)


@calendars_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Calendar name or path to a TOML file.")],
    from_: Annotated[
        str | None,
        typer.Option("--from", help="First local date (default: today in the calendar's zone)."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Last local date, inclusive (default: a week from --from)."),
    ] = None,
) -> None:
    """Show the open hours of a calendar in local time, one line per date."""
    first = parse_date(from_, "--from") if from_ is not None else None
    last = parse_date(to, "--to") if to is not None else None
    cal = load_calendar(name)
    if first is None:
        week = timedelta(days=SHOW_DEFAULT_DAYS - 1)
        first = datetime.now(cal.tz).date() if last is None else last - week
    if last is None:
        last = first + timedelta(days=SHOW_DEFAULT_DAYS - 1)
    if last < first:
        raise InputError(
            f"--to {last.isoformat()} is before --from {first.isoformat()}",
            field="--to",
            value=last.isoformat(),
        )
    if (last - first).days + 1 > SHOW_MAX_DAYS:
        raise InputError(
            f"--from {first.isoformat()} --to {last.isoformat()} spans more than "
            f"{SHOW_MAX_DAYS} days; show at most {SHOW_MAX_DAYS} at a time",
            field="--to",
            value=last.isoformat(),
        )
    typer.echo(f"{cal.name}: {cal.title} ({cal.tz})")
    for hours in day_hours(cal, first, last):
        typer.echo(render_day(hours))


# --- stored calendars: `calendars put` and `calendars versions` -------------------------

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="service config file (TOML), as for serve")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="database URL (default: $SLA_ENGINE_DATABASE_URL, the config file's "
        "[database].url, then sqlite:///sla-engine.db)",
    ),
]


@contextmanager
def _calendar_changes(config: Path | None, database_url: str | None) -> Iterator[CalendarChanges]:
    """The calendar store of the service's database (migrated first, as `serve` does)."""
    from sla_engine.calendar_store.changes import CalendarChanges
    from sla_engine.config import load_config
    from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade

    cfg = load_config(config, database_url=database_url, stored_calendars=True)
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    try:
        yield CalendarChanges(make_sessionmaker(engine), None, utcnow)
    finally:
        engine.dispose()


@calendars_app.command("put")
def put_command(
    name: Annotated[str, typer.Argument(help="Calendar name (letters, digits, _ . -).")],
    file: Annotated[Path, typer.Argument(help="Calendar TOML file (section 1 format).")],
    effective_from: Annotated[
        str | None,
        typer.Option(
            "--effective-from",
            help="ISO 8601 with offset; default now. Not on creation (version 1 has no start).",
        ),
    ] = None,
    retroactive: Annotated[
        bool,
        typer.Option("--retroactive", help="allow --effective-from before now (rewrites answers)"),
    ] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Store FILE as calendar NAME in the service's database: version 1 of a new calendar, or
    the next version of an existing one. Running services use it within 2 seconds."""
    from sla_engine.calendar_store.changes import check_name
    from sla_engine.calendar_store.definitions import read_file_definition

    check_name(name, "NAME")
    when = None if effective_from is None else parse_instant(effective_from, "--effective-from")
    content = read_file_definition(file, name, label=str(file))
    with _calendar_changes(config, database_url) as changes:
        result = changes.put(
            name, content.definition, effective_from=when, retroactive=retroactive, origin="cli"
        )
    start = "the beginning" if result.effective_from is None else result.effective_from.isoformat()
    note = " (retroactive)" if result.retroactive else ""
    typer.echo(f"{result.name}: version {result.version}, in force from {start}{note}")


@calendars_app.command("versions")
def versions_command(
    name: Annotated[str, typer.Argument(help="Calendar name.")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List the versions of calendar NAME: number, in force from, created, retroactive,
    origin (file, http, cli)."""
    from sla_engine.calendar_store.changes import check_name

    check_name(name, "NAME")
    with _calendar_changes(config, database_url) as changes:
        rows = changes.versions(name)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = [("VERSION", "EFFECTIVE_FROM", "CREATED_AT", "RETROACTIVE", "ORIGIN")]
    table.extend(
        (
            str(row["version"]),
            row["effective_from"] or "-",
            row["created_at"] or "-",
            "yes" if row["retroactive"] else "no",
            row["origin"],
        )
        for row in rows
    )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
