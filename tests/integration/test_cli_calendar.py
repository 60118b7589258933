"""The calendar CLI (`deadline`, `elapsed`, `calendars list|show`) and the CLI error boundary.

Every command runs the installed `sla-engine` script in a real subprocess. Bad arguments must
give exit code 2 and exactly one `error: ...` line on stderr naming the value, no traceback.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sla_engine.cli import error_line
from sla_engine.cli.calendar_cmds import format_business_time
from sla_engine.cli.options import parse_instant
from sla_engine.errors import InputError
from tests.support.calendars import weekdays_toml

SLA_ENGINE = str(Path(sys.executable).parent / "sla-engine")

TEST_DESK = """\
name = "Test desk"
timezone = "Europe/London"

[hours]
mon = ["09:00-17:00"]
tue = ["09:00-12:30", "13:30-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["22:00-06:00"]
sun = ["00:00-24:00"]

[holidays]
country = "GB"
subdiv = "ENG"

[dates]
"2026-12-24" = ["09:00-12:30"]

[[closures]]
start = "2026-12-30T12:00"
end = "2026-12-31T10:00"
"""


def sla_engine(*args: str, calendars: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("SLA_ENGINE_CALENDARS", None)
    if calendars is not None:
        env["SLA_ENGINE_CALENDARS"] = str(calendars)
    return subprocess.run(
        [SLA_ENGINE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def argv(command_line: str) -> tuple[str, ...]:
    return tuple(shlex.split(command_line))


# Each invocation below runs once, all concurrently (a CLI process spends most of its time
# importing); the tests then judge the outputs. "{calendars}" is the test calendar folder.
FRIDAY_DEADLINE = argv(
    "deadline --calendar smartertools --start 2026-11-20T13:00-07:00 --duration 4h"
)
UTC_START_DEADLINE = argv(
    "deadline --calendar smartertools --start 2026-11-25T22:30:00Z --duration 1h30m"
)
PATH_DEADLINE = argv(
    "deadline --calendar {calendars}/test-desk.toml --start 2026-12-24T11:00:00+00:00 --duration 2h"
)
ELAPSED = argv(
    "elapsed --calendar smartertools --from 2026-11-20T13:00-07:00 "
    "--to 2026-11-23T08:30:00.25-07:00"
)
ELAPSED_BACKWARDS = argv("elapsed -c 24x7 --from 2026-01-02T00:00Z --to 2026-01-01T00:00Z")
LIST = argv("calendars list")
SHOW_RANGE = argv("calendars show test-desk --from 2026-12-21 --to 2026-12-31")
SHOW_DST = argv("calendars show test-desk --from 2026-10-23 --to 2026-10-25")
SHOW_DEFAULT = argv("calendars show smartertools")
HELP = argv("--help")

START = "--start 2026-11-20T13:00Z"
BAD_ARGUMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "naive start": (
        argv("deadline -c smartertools --start 2026-11-20T13:00 --duration 4h"),
        "2026-11-20T13:00",
    ),
    "unparseable start": (
        argv("deadline -c smartertools --start 'next friday' --duration 4h"),
        "next friday",
    ),
    "unknown calendar": (argv(f"deadline -c no-such-desk {START} --duration 4h"), "no-such-desk"),
    "missing calendar file": (
        argv(f"deadline -c /nonexistent/desk.toml {START} --duration 4h"),
        "/nonexistent/desk.toml",
    ),
    "broken calendar file": (
        argv(f"deadline -c broken-zone {START} --duration 4h"),
        "Mars/Olympus_Mons",
    ),
    "bad duration": (argv(f"deadline -c smartertools {START} --duration '4 days'"), "4 days"),
    "negative duration": (argv(f"deadline -c smartertools {START} --duration -1h"), "-1h"),
    "missing option": (argv("deadline -c smartertools --duration 4h"), "--start"),
    "unknown option": (argv("elapsed --since 2026-11-20T13:00Z"), "--since"),
    "naive elapsed end": (
        argv("elapsed -c 24x7 --from 2026-11-20T13:00Z --to 2026-11-21"),
        "2026-11-21",
    ),
    "show from after to": (
        argv("calendars show smartertools --from 2026-12-10 --to 2026-12-01"),
        "2026-12-01",
    ),
    "show bad date": (argv("calendars show smartertools --from 2026-02-30"), "2026-02-30"),
    "show too long a range": (
        argv("calendars show smartertools --from 2026-01-01 --to 2030-01-01"),
        "2030-01-01",
    ),
    "date out of range": (argv("calendars show 24x7 --from 9999-12-31"), "out of range"),
}

INVOCATIONS = [
    FRIDAY_DEADLINE,
    UTC_START_DEADLINE,
    PATH_DEADLINE,
    ELAPSED,
    ELAPSED_BACKWARDS,
    LIST,
    SHOW_RANGE,
    SHOW_DST,
    SHOW_DEFAULT,
    HELP,
    *(args for args, _ in BAD_ARGUMENTS.values()),
]

Runs = dict[tuple[str, ...], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("calendars")
    (folder / "test-desk.toml").write_text(TEST_DESK)
    (folder / "broken-zone.toml").write_text('timezone = "Mars/Olympus_Mons"\n')

    def run(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return sla_engine(*(arg.format(calendars=folder) for arg in args), calendars=folder)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(INVOCATIONS, pool.map(run, INVOCATIONS), strict=True))


def test_deadline_runs_out_at_a_closing_time_lands_on_the_next_opening(runs: Runs) -> None:
    run = runs[FRIDAY_DEADLINE]
    assert (run.returncode, run.stdout, run.stderr) == (0, "2026-11-23T08:00:00-07:00\n", "")


def test_deadline_is_printed_in_the_calendar_zone_whatever_the_start_offset(runs: Runs) -> None:
    # Wed 15:30 in Phoenix + 1h30m ends on Wednesday's close; Thursday is Thanksgiving,
    # so the deadline is Friday's opening.
    run = runs[UTC_START_DEADLINE]
    assert (run.returncode, run.stdout) == (0, "2026-11-27T08:00:00-07:00\n")


def test_deadline_accepts_a_calendar_file_path(runs: Runs) -> None:
    # Christmas Eve is a half day (until 12:30); 25, 26 (Sat) closed, Sunday 27 open all day.
    run = runs[PATH_DEADLINE]
    assert (run.returncode, run.stdout) == (0, "2026-12-27T00:30:00+00:00\n")


def test_elapsed_prints_hours_minutes_seconds_and_exact_seconds(runs: Runs) -> None:
    run = runs[ELAPSED]
    assert (run.returncode, run.stdout) == (0, "4h30m0.25s (16200.25 s)\n")


def test_elapsed_is_negative_when_to_is_before_from(runs: Runs) -> None:
    run = runs[ELAPSED_BACKWARDS]
    assert (run.returncode, run.stdout) == (0, "-24h0m0s (-86400.0 s)\n")


def test_calendars_list_shows_names_titles_and_zones_and_reports_a_broken_file(
    runs: Runs,
) -> None:
    run = runs[LIST]
    rows = [
        [cell.strip() for cell in line.split("  ") if cell.strip()]
        for line in run.stdout.splitlines()
    ]
    assert rows[0] == ["NAME", "TITLE", "TIMEZONE"]
    assert ["test-desk", "Test desk", "Europe/London"] in rows
    assert ["smartertools", "SmarterTools support hours", "America/Phoenix"] in rows
    assert not any(row[0] == "broken-zone" for row in rows)
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith("error: ") and "Mars/Olympus_Mons" in run.stderr


def test_calendars_show_lists_local_windows_per_date_with_closed_days(runs: Runs) -> None:
    run = runs[SHOW_RANGE]
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "test-desk: Test desk (Europe/London)",
        "2026-12-21 Mon  09:00-17:00  (8h0m0s)",
        "2026-12-22 Tue  09:00-12:30 13:30-17:00  (7h0m0s)",
        "2026-12-23 Wed  09:00-17:00  (8h0m0s)",
        "2026-12-24 Thu  09:00-12:30  (3h30m0s)  [date override]",
        "2026-12-25 Fri  closed  [holiday: Christmas Day]",
        "2026-12-26 Sat  closed  [holiday: Boxing Day]",
        "2026-12-27 Sun  00:00-24:00  (24h0m0s)",
        "2026-12-28 Mon  closed  [holiday: Boxing Day (observed)]",
        "2026-12-29 Tue  09:00-12:30 13:30-17:00  (7h0m0s)",
        "2026-12-30 Wed  09:00-12:00  (3h0m0s)  [closure]",
        "2026-12-31 Thu  10:00-17:00  (7h0m0s)  [closure]",
    ]


def test_calendars_show_splits_overnight_windows_and_marks_dst_offsets(runs: Runs) -> None:
    run = runs[SHOW_DST]
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1:] == [
        "2026-10-23 Fri  22:00-24:00  (2h0m0s)",
        "2026-10-24 Sat  00:00-06:00  (6h0m0s)",
        "2026-10-25 Sun  00:00+01:00-24:00+00:00  (25h0m0s)",
    ]


def test_calendars_show_defaults_to_a_week_from_today(runs: Runs) -> None:
    run = runs[SHOW_DEFAULT]
    assert run.returncode == 0, run.stderr
    days = [date.fromisoformat(line[:10]) for line in run.stdout.splitlines()[1:]]
    today = datetime.now(ZoneInfo("America/Phoenix")).date()
    assert days[0] in (today - timedelta(days=1), today)  # the run may straddle midnight
    assert days == [days[0] + timedelta(days=i) for i in range(7)]


def test_help_lists_the_calendar_commands(runs: Runs) -> None:
    run = runs[HELP]
    assert run.returncode == 0
    for command in ("deadline", "elapsed", "calendars"):
        assert command in run.stdout


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_argument_gives_one_error_line_and_exit_code_2(case: str, runs: Runs) -> None:
    args, value = BAD_ARGUMENTS[case]
    run = runs[args]
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    assert value in lines[0]
    assert run.stdout == ""


def test_format_business_time_keeps_microseconds_and_sign() -> None:
    assert format_business_time(timedelta(hours=4)) == "4h0m0s (14400.0 s)"
    assert format_business_time(timedelta(hours=400, seconds=61)) == "400h1m1s (1440061.0 s)"
    assert format_business_time(timedelta(microseconds=1)) == "0h0m0.000001s (0.000001 s)"
    assert format_business_time(-timedelta(minutes=90)) == "-1h30m0s (-5400.0 s)"


def test_error_line_names_field_and_value_on_one_line() -> None:
    exc = InputError("must not be\nempty", field="--config", value="")
    assert error_line(exc) == "error: --config: must not be empty (got '')"


def test_parse_instant_accepts_offsets_and_z_and_refuses_naive() -> None:
    assert parse_instant("2026-11-20T13:00Z", "--start").utcoffset() == timedelta(0)
    assert parse_instant("2026-11-20T13:00-07:00", "--start").utcoffset() == timedelta(hours=-7)
    with pytest.raises(InputError) as caught:
        parse_instant("2026-11-20 13:00", "--at")
    assert caught.value.field == "--at"
    assert caught.value.value == "2026-11-20 13:00"


# --- stored calendars: `calendars put` and `calendars versions` (both databases) -------------

DESK_TOML = weekdays_toml("Desk")


def test_calendars_put_and_versions_against_the_database(db_url: str, tmp_path: Path) -> None:
    desk = tmp_path / "desk.toml"
    desk.write_text(DESK_TOML)
    mornings = tmp_path / "mornings.toml"
    mornings.write_text(DESK_TOML.replace("08:00-17:00", "08:00-13:00"))
    (tmp_path / "off.ics").write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:1\n"
        "DTSTART;VALUE=DATE:20270104\nDTEND;VALUE=DATE:20270105\nSUMMARY:off\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    with_ics = tmp_path / "with-ics.toml"
    with_ics.write_text(DESK_TOML + '\n[holidays]\nics = ["off.ics"]\n')
    db = ("--database-url", db_url)
    next_year = (datetime.now(ZoneInfo("UTC")) + timedelta(days=400)).date().isoformat()
    later = f"{next_year}T00:00:00-07:00"

    created = sla_engine("calendars", "put", "desk", str(desk), *db)
    assert (created.returncode, created.stderr) == (0, "")
    assert created.stdout == "desk: version 1, in force from the beginning\n"
    added = sla_engine("calendars", "put", "desk", str(mornings), "--effective-from", later, *db)
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"desk: version 2, in force from {later}\n"
    inlined = sla_engine("calendars", "put", "desk", str(with_ics), *db, "--effective-from", later)
    assert inlined.returncode == 0, inlined.stderr

    listed = sla_engine("calendars", "versions", "desk", *db)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["VERSION", "EFFECTIVE_FROM", "CREATED_AT", "RETROACTIVE", "ORIGIN"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert rows[1][1] == "-" and rows[1][-1] == "cli" and rows[2][3] == "no"
    as_json = sla_engine("calendars", "versions", "desk", "--json", *db)
    versions = json.loads(as_json.stdout)
    assert versions[1]["definition"]["hours"]["mon"] == ["08:00-13:00"]
    assert "BEGIN:VCALENDAR" in versions[2]["definition"]["holidays"]["ics_text"]
    assert str(tmp_path) not in as_json.stdout

    file_calendar = sla_engine("calendars", "versions", "smartertools", *db)
    assert file_calendar.returncode == 0
    assert file_calendar.stdout.splitlines()[1].split()[-1] == "file"


def test_calendars_put_and_versions_errors_are_one_line_and_exit_2(
    sqlite_url: str, tmp_path: Path
) -> None:
    desk = tmp_path / "desk.toml"
    desk.write_text(DESK_TOML)
    broken = tmp_path / "broken.toml"
    broken.write_text(DESK_TOML.replace('"08:00-17:00"', '"8 to 5"', 1))
    db = ("--database-url", sqlite_url)
    assert sla_engine("calendars", "put", "desk", str(desk), *db).returncode == 0
    cases = [
        (("calendars", "put", "desk", str(desk), "--effective-from", "2020-01-01T00:00Z"), "2020"),
        (("calendars", "put", "desk", str(broken), *()), "hours.mon[0]"),
        (("calendars", "put", "desk", str(tmp_path / "none.toml")), "none.toml"),
        (
            ("calendars", "put", "new-desk", str(desk), "--effective-from", "2030-01-01T00:00Z"),
            "effective_from",
        ),
        (("calendars", "put", "desk", str(desk), "--effective-from", "soon"), "soon"),
        (("calendars", "put", "bad/name", str(desk)), "bad/name"),
        (("calendars", "versions", "no-such-desk"), "no-such-desk"),
    ]
    for args, named in cases:
        run = sla_engine(*args, *db)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
        assert named in lines[0], (named, lines[0])
    retro = sla_engine(
        "calendars",
        "put",
        "desk",
        str(desk),
        "--effective-from",
        "2026-01-01T00:00Z",
        "--retroactive",
        *db,
    )
    assert retro.returncode == 0 and "(retroactive)" in retro.stdout
