"""Holidays from iCalendar: `[holidays] ics` files and inline `ics_text` (read with icalendar
and recurring-ical-events), against a real-world shaped file and the `holidays` package."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import icalendar
import pytest

from sla_engine import Calendar, CalendarError, load_calendar
from sla_engine.core.calendar import calendar_from_spec
from sla_engine.core.calendar_file import parse_calendar_definition, parse_calendar_text

DATA = Path(__file__).parent / "data"
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
WEEKDAYS = """
[hours]
mon = ["08:00-17:00"]
tue = ["08:00-17:00"]
wed = ["08:00-17:00"]
thu = ["08:00-17:00"]
fri = ["08:00-17:00"]
"""


def day_hours(cal: Calendar, year: int, month: int, day: int) -> list[tuple[str, str]]:
    start = datetime(year, month, day, tzinfo=cal.tz)
    return [
        (a.strftime("%H:%M"), b.strftime("%H:%M"))
        for a, b in cal.open_intervals(start, start + 24 * H)
    ]


def ics_calendar(ics: str, zone: str = "Europe/Berlin") -> Calendar:
    data = {
        "timezone": zone,
        "hours": {d: ["08:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": {"ics_text": ics},
    }
    return calendar_from_spec(parse_calendar_definition(data, source="inline"), "inline")


def vcalendar(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Calendar:
    folder = tmp_path_factory.mktemp("calendars")
    for name in ("team-berlin.toml", "team-closures.ics"):
        shutil.copy(DATA / name, folder / name)
    return load_calendar(folder / "team-berlin.toml")


# -- a real-world shaped file ---------------------------------------------------------------


def test_an_all_day_event_closes_each_date_it_covers_dtend_exclusive(team: Calendar) -> None:
    assert day_hours(team, 2026, 10, 9) == [("08:00", "17:00")]
    assert day_hours(team, 2026, 10, 12) == []  # Team offsite, Monday..Wednesday
    assert day_hours(team, 2026, 10, 14) == []
    assert day_hours(team, 2026, 10, 15) == [("08:00", "17:00")]  # DTEND: open again
    assert team.spec.holidays is not None
    assert team.spec.holidays.build().get(date(2026, 10, 12)) == "Team offsite"


def test_dates_win_over_the_ics_for_whole_dates(team: Calendar) -> None:
    assert day_hours(team, 2026, 10, 13) == [("09:00", "12:00")]  # inside the offsite
    assert day_hours(team, 2026, 12, 24) == [("08:00", "12:00")]  # Christmas Eve event


def test_a_timed_event_is_a_closure_whatever_dates_say(team: Calendar) -> None:
    # [dates] 08:00-20:00 on 2026-11-03, maintenance 14:00-18:00 Berlin (TZID)
    assert day_hours(team, 2026, 11, 3) == [("08:00", "14:00"), ("18:00", "20:00")]


def test_tzid_and_utc_times_are_honoured(team: Calendar) -> None:
    # 09:00-11:00 in New York is 15:00-17:00 in Berlin
    assert day_hours(team, 2026, 12, 4) == [("08:00", "15:00")]
    # 15:00Z + 1h30 is 16:00-17:30 in Berlin (winter)
    assert day_hours(team, 2026, 12, 9) == [("08:00", "16:00")]


def test_a_yearly_rule_closes_its_date_every_year_but_the_exdate(team: Calendar) -> None:
    for year in (2026, 2030, 2031, 2047, 2125):
        assert date(year, 6, 5).weekday() < 5
        assert day_hours(team, year, 6, 5) == [], year
    assert day_hours(team, 2029, 6, 5) == [("08:00", "17:00")]  # EXDATE (a Tuesday)


def test_cancelled_events_close_nothing_and_the_country_still_counts(team: Calendar) -> None:
    assert day_hours(team, 2026, 12, 14) == [("08:00", "17:00")]
    assert day_hours(team, 2026, 10, 3) == []  # German Unity Day (a Saturday anyway)
    assert day_hours(team, 2026, 12, 25) == []  # Christmas, from the holidays package
    assert day_hours(team, 2027, 3, 8) == []  # International Women's Day, Berlin only


def test_ics_paths_are_relative_to_the_calendar_file(
    team: Calendar, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert team.path is not None
    again = load_calendar(str(team.path))
    assert day_hours(again, 2026, 10, 12) == []


def test_arithmetic_runs_through_the_ics_closures(team: Calendar) -> None:
    friday = datetime(2026, 10, 9, 15, tzinfo=BERLIN)
    # Friday 2 h, Tuesday's 3 h skeleton shift, Thursday from 08:00
    assert team.add(friday, 6 * H) == datetime(2026, 10, 15, 9, tzinfo=BERLIN)
    assert team.elapsed(friday, datetime(2026, 10, 16, tzinfo=BERLIN)) == 14 * H


# -- the same calendar as the holidays package -----------------------------------------------


def ics_of_holidays(table: holidays.HolidayBase) -> str:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//sla_engine tests//holidays//EN")
    cal.add("version", "2.0")
    for day, name in sorted(table.items()):
        event = icalendar.Event()
        event.add("uid", f"{day.isoformat()}@holidays.test")
        event.add("dtstamp", datetime(2026, 1, 1, tzinfo=UTC))
        event.add("summary", name)
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        cal.add_component(event)
    return cal.to_ical().decode()


@pytest.mark.parametrize(
    ("country", "subdiv", "zone"),
    [("US", None, "America/New_York"), ("DE", "BY", "Europe/Berlin")],
)
def test_an_ics_of_a_countrys_holidays_gives_the_same_calendar_as_country(
    country: str, subdiv: str | None, zone: str
) -> None:
    years = range(2024, 2031)
    table = holidays.country_holidays(country, subdiv=subdiv, years=years)
    head = f'timezone = "{zone}"\n{WEEKDAYS}\n[holidays]\n'
    subdiv_line = f'subdiv = "{subdiv}"\n' if subdiv else ""
    by_country = calendar_from_spec(
        parse_calendar_text(f'{head}country = "{country}"\n{subdiv_line}', "country.toml")
    )
    by_ics = calendar_from_spec(
        parse_calendar_definition(
            {
                **parse_head(zone),
                "holidays": {"ics_text": ics_of_holidays(table)},
            },
            source="ics",
        )
    )
    tz = ZoneInfo(zone)
    lo, hi = datetime(2024, 1, 1, tzinfo=tz), datetime(2031, 1, 1, tzinfo=tz)
    assert by_ics.open_intervals(lo, hi) == by_country.open_intervals(lo, hi)
    weekday_holidays = {d for d in table if d.weekday() < 5 and d in years_of(years)}
    assert len(weekday_holidays) > 50  # the comparison is not vacuous
    start = datetime(2024, 2, 1, 10, tzinfo=tz)
    assert by_ics.add(start, 4000 * H) == by_country.add(start, 4000 * H)


def years_of(years: range) -> set[date]:
    return {date(y, 1, 1) + timedelta(days=n) for y in years for n in range(366)}


def parse_head(zone: str) -> dict[str, object]:
    return {
        "timezone": zone,
        "hours": {d: ["08:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    }


# -- more event shapes ----------------------------------------------------------------------


def test_floating_times_are_calendar_local_and_durations_count() -> None:
    cal = ics_calendar(
        vcalendar(
            "UID:a\r\nSUMMARY:Floating\r\nDTSTART:20261104T140000\r\nDURATION:PT2H",
            "UID:b\r\nSUMMARY:Three days\r\nDTSTART;VALUE=DATE:20261109\r\nDURATION:P3D",
            "UID:c\r\nSUMMARY:One day\r\nDTSTART;VALUE=DATE:20261116",
            "UID:d\r\nSUMMARY:Instant\r\nDTSTART:20261117T100000",
        )
    )
    assert day_hours(cal, 2026, 11, 4) == [("08:00", "14:00"), ("16:00", "17:00")]
    assert [day_hours(cal, 2026, 11, d) for d in (9, 10, 11, 12)] == [
        [],
        [],
        [],
        [("08:00", "17:00")],
    ]
    assert day_hours(cal, 2026, 11, 16) == []  # a DATE without DTEND: that one day
    assert day_hours(cal, 2026, 11, 17) == [("08:00", "17:00")]  # a zero-length event


def test_a_weekly_timed_rule_with_until_and_exdate() -> None:
    cal = ics_calendar(
        vcalendar(
            "UID:standup\r\nSUMMARY:Team meeting\r\n"
            "DTSTART;TZID=Europe/Berlin:20261005T100000\r\n"
            "DTEND;TZID=Europe/Berlin:20261005T110000\r\n"
            "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20261031T000000Z\r\n"
            "EXDATE;TZID=Europe/Berlin:20261019T100000"
        )
    )
    assert day_hours(cal, 2026, 10, 5) == [("08:00", "10:00"), ("11:00", "17:00")]
    assert day_hours(cal, 2026, 10, 26) == [("08:00", "10:00"), ("11:00", "17:00")]  # CET now
    assert day_hours(cal, 2026, 10, 19) == [("08:00", "17:00")]  # EXDATE
    assert day_hours(cal, 2026, 11, 2) == [("08:00", "17:00")]  # after UNTIL


def test_an_event_years_long_does_not_look_like_a_calendar_that_never_opens() -> None:
    cal = ics_calendar(
        vcalendar(
            "UID:x\r\nSUMMARY:Closed\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20350101"
        )
    )
    start = datetime(2026, 12, 31, 16, tzinfo=BERLIN)
    assert cal.add(start, 2 * H) == datetime(2035, 1, 1, 9, tzinfo=BERLIN)


def test_a_rule_that_closes_every_day_raises_instead_of_hanging() -> None:
    cal = ics_calendar(
        vcalendar("UID:x\r\nSUMMARY:Always\r\nDTSTART;VALUE=DATE:20200101\r\nRRULE:FREQ=DAILY")
    )
    with pytest.raises(CalendarError, match="no open time after"):
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), H)


# -- malformed sources ----------------------------------------------------------------------

BAD = {
    "not a content line": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nthis is not a line\r\nEND:VCALENDAR\r\n",
        "line 3: ",
    ),
    "bad date": (
        vcalendar("UID:a\r\nSUMMARY:Broken\r\nDTSTART:2026XX01"),
        "line 7: event 'Broken' (UID a): DTSTART",
    ),
    "bad rule": (
        vcalendar("UID:r\r\nSUMMARY:Rule\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=BOGUS"),
        "line 8: event 'Rule' (UID r): RRULE",
    ),
    "no DTSTART": (
        vcalendar("UID:n\r\nSUMMARY:Nothing"),
        "line 4: event 'Nothing' (UID n): DTSTART missing",
    ),
    "unknown TZID": (
        vcalendar("UID:m\r\nSUMMARY:Mars\r\nDTSTART;TZID=Mars/Base:20260101T100000"),
        "line 7: event 'Mars' (UID m): DTSTART: unknown TZID 'Mars/Base'",
    ),
    "never ended": (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260101\r\nEND:VCALENDAR\r\n",
        "line 4: END:VCALENDAR where END:VEVENT was expected",
    ),
    "not iCalendar": ("Subject: holidays\r\n\r\nsee attachment\r\n", "line 1: not an iCalendar"),
    "mixed types": (
        vcalendar("UID:x\r\nSUMMARY:Mix\r\nDTSTART;VALUE=DATE:20260101\r\nDTEND:20260102T100000"),
        "event 'Mix' (UID x): DTEND and DTSTART must both be dates",
    ),
    "ends before it starts": (
        vcalendar(
            "UID:b\r\nSUMMARY:Back\r\nDTSTART;VALUE=DATE:20260105\r\nDTEND;VALUE=DATE:20260102"
        ),
        "line 8: event 'Back' (UID b): ends before it starts",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_ics_file_names_the_file_and_the_line(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    (tmp_path / "closures.ics").write_text(text, newline="")
    toml = tmp_path / "desk.toml"
    toml.write_text(f'timezone = "Europe/Berlin"\n{WEEKDAYS}\n[holidays]\nics = ["closures.ics"]\n')
    with pytest.raises(CalendarError) as caught:
        load_calendar(toml)
    message = str(caught.value)
    assert message.startswith(f"{toml}: holidays.ics[0]: {tmp_path / 'closures.ics'}: ")
    assert expected in message
    assert caught.value.field == "holidays.ics[0]"


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_ics_text_names_the_key_and_the_line(case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(CalendarError) as caught:
        ics_calendar(text)
    assert str(caught.value).startswith("inline: holidays.ics_text: ")
    assert expected in str(caught.value)
    assert caught.value.field == "holidays.ics_text"


def test_a_missing_ics_file_names_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "desk.toml"
    toml.write_text(f'timezone = "Europe/Berlin"\n{WEEKDAYS}\n[holidays]\nics = ["gone.ics"]\n')
    with pytest.raises(
        CalendarError, match=r"holidays\.ics\[0\]: cannot read iCalendar file"
    ) as caught:
        load_calendar(toml)
    assert str(tmp_path / "gone.ics") in str(caught.value)
    assert caught.value.field == "holidays.ics[0]" and caught.value.value == "gone.ics"


# -- definitions from mappings (JSON or TOML over HTTP) ---------------------------------------


def test_a_definition_from_json_equals_the_same_toml() -> None:
    toml = (
        (DATA / "team-berlin.toml")
        .read_text()
        .replace(
            'ics = ["team-closures.ics"]',
            "ics_text = '''" + (DATA / "team-closures.ics").read_text() + "'''",
        )
    )
    from_toml = parse_calendar_text(toml, "desk")
    definition = {
        "name": "Berlin support desk",
        "timezone": "Europe/Berlin",
        "hours": {d: ["08:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": {
            "country": "DE",
            "subdiv": "BE",
            "ics_text": (DATA / "team-closures.ics").read_text(),
        },
        "dates": {
            "2026-10-13": ["09:00-12:00"],
            "2026-11-03": ["08:00-20:00"],
            "2026-12-24": ["08:00-12:00"],
        },
    }
    from_json = parse_calendar_definition(
        json.loads(json.dumps(definition)), source="desk", allow_ics_paths=False
    )
    assert from_json == from_toml
    a, b = calendar_from_spec(from_json), calendar_from_spec(from_toml)
    lo = datetime(2026, 10, 1, tzinfo=BERLIN)
    assert a.open_intervals(lo, lo + 90 * 24 * H) == b.open_intervals(lo, lo + 90 * 24 * H)


def test_ics_paths_are_refused_where_not_allowed() -> None:
    definition = {**parse_head("Europe/Berlin"), "holidays": {"ics": ["/etc/passwd"]}}
    with pytest.raises(CalendarError, match=r"^api: holidays\.ics: file paths are not accepted"):
        parse_calendar_definition(definition, source="api", allow_ics_paths=False)


@pytest.mark.parametrize(
    ("definition", "key", "value"),
    [
        ({"hours": {"mon": ["8-17"]}}, "hours.mon[0]", "8-17"),
        ({"timezone": "Mars/Base"}, "timezone", "Mars/Base"),
        ({"holidays": {"country": "XX"}}, "holidays.country", "XX"),
        ({"holidays": {"ics_text": 42}}, "holidays.ics_text", 42),
        ({"holidays": {"ics": "a.ics"}}, "holidays.ics", "a.ics"),
        ({"holidays": {"subdiv": "BE", "ics_text": vcalendar()}}, "holidays.subdiv", "BE"),
        ({"dates": {"2026-13-01": []}}, "dates.2026-13-01", "2026-13-01"),
        ({"color": "red"}, "color", "color"),
    ],
)
def test_definition_errors_name_the_key_and_value_as_the_file_loader_does(
    definition: dict[str, object], key: str, value: object
) -> None:
    data = {**parse_head("Europe/Berlin"), **definition}
    with pytest.raises(CalendarError) as from_mapping:
        parse_calendar_definition(data, source="api")
    assert (from_mapping.value.field, from_mapping.value.value) == (key, value)
    assert str(from_mapping.value).startswith(f"api: {key}: ")


def test_an_edited_ics_file_is_read_again_by_load_calendar(tmp_path: Path) -> None:
    ics = tmp_path / "closures.ics"
    ics.write_text(vcalendar("UID:a\r\nSUMMARY:Closed\r\nDTSTART;VALUE=DATE:20261012"))
    toml = tmp_path / "desk.toml"
    toml.write_text(f'timezone = "Europe/Berlin"\n{WEEKDAYS}\n[holidays]\nics = ["closures.ics"]\n')
    first = load_calendar(toml)
    assert load_calendar(toml) is first
    assert day_hours(first, 2026, 10, 12) == []
    ics.write_text(vcalendar("UID:a\r\nSUMMARY:Closed\r\nDTSTART;VALUE=DATE:20261013"))
    stamp = ics.stat().st_mtime_ns + 1_000_000_000
    os.utime(ics, ns=(stamp, stamp))
    second = load_calendar(toml)
    assert second is not first
    assert day_hours(second, 2026, 10, 12) == [("08:00", "17:00")]
    assert day_hours(second, 2026, 10, 13) == []


def test_a_null_country_beside_ics_text_is_no_country() -> None:
    data = {**parse_head("Europe/Berlin"), "holidays": {"country": None, "ics_text": vcalendar()}}
    spec = parse_calendar_definition(data, source="api")
    assert spec.holidays is not None and spec.holidays.country is None
