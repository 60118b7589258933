"""Stored calendars through the Python services, on SQLite and PostgreSQL: the rules for a
new version, what was known when, file calendars as version 1 and their edits as versions,
and every process seeing a new version within its freshness check."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from sla_engine.calendar_store.changes import place_version
from sla_engine.calendar_store.models import CalendarReplan, CalendarVersion
from sla_engine.calendar_store.source import StoredCalendars
from sla_engine.calendar_store.store import VersionRow
from sla_engine.errors import CalendarError, Conflict, InputError, NotFound
from sla_engine.storage.db import make_engine, make_sessionmaker
from tests.support.calendars import Clock, calendar_store, weekdays, weekdays_toml

NOW = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)  # Wednesday 14:00 in Phoenix
DAY = weekdays("08:00-17:00")
MORNING = weekdays("08:00-13:00")


@pytest.fixture
def store(db_url: str, calendar_dir: Path) -> Iterator[tuple]:  # type: ignore[type-arg]
    clock = Clock(NOW)
    with calendar_store(db_url, clock) as (calendars, engine):
        yield calendars, clock, engine


def _row(version: int, effective_from: datetime | None) -> VersionRow:
    return VersionRow(1, "x", version, effective_from, None, NOW, False, "http", {})


# --- the rules (pure) ----------------------------------------------------------------------


def test_a_new_calendar_is_version_one_without_a_start() -> None:
    assert place_version(None, None, False, NOW).effective_from is None
    with pytest.raises(InputError) as bad:
        place_version(None, NOW, False, NOW)
    assert bad.value.field == "effective_from"


def test_a_new_version_defaults_to_now_and_past_ones_need_retroactive() -> None:
    assert place_version(_row(1, None), None, False, NOW).effective_from == NOW
    later = NOW + timedelta(days=5)
    assert place_version(_row(1, None), later, False, NOW).effective_from == later
    past = NOW - timedelta(hours=1)
    with pytest.raises(Conflict):
        place_version(_row(1, None), past, False, NOW)
    placed = place_version(_row(1, None), past, True, NOW)
    assert placed.retroactive and placed.known_from(NOW) == past
    # a "retroactive" version that is not in the past is an ordinary one, known when made
    ahead = place_version(_row(1, None), later, True, NOW)
    assert not ahead.retroactive and ahead.known_from(NOW) == NOW


def test_a_version_before_the_latest_one_is_a_conflict_whatever_the_flag() -> None:
    latest = _row(2, NOW + timedelta(days=3))
    for retro in (False, True):
        with pytest.raises(Conflict):
            place_version(latest, NOW + timedelta(days=1), retro, NOW)
    assert place_version(latest, latest.effective_from, False, NOW).effective_from == (
        latest.effective_from
    )


# --- storing versions ----------------------------------------------------------------------


def test_create_append_and_list(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, clock, _ = store
    first = calendars.put("desk", DAY)
    assert (first.version, first.effective_from) == (1, None)
    clock.now = NOW + timedelta(minutes=5)
    second = calendars.put("desk", MORNING)
    assert (second.version, second.effective_from) == (2, clock.now)
    rows = calendars.changes.versions("desk")
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["definition"] == MORNING and rows[1]["retroactive"] is False
    assert "desk" in calendars.source.names()
    with pytest.raises(NotFound):
        calendars.changes.versions("nothing-here")


def test_a_bad_definition_names_the_key_and_stores_nothing(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, _, engine = store
    bad = [
        ({"timezone": "Mars/Olympus", "hours": {}}, "timezone"),
        ({"timezone": "UTC", "hours": {"mon": ["8-17"]}}, "hours.mon[0]"),
        ({"timezone": "UTC", "hours": {"funday": ["08:00-17:00"]}}, "hours.funday"),
        ({"timezone": "UTC", "colour": "blue"}, "colour"),
        ({"timezone": "UTC", "hours": {}}, "hours"),  # never open
        ({"timezone": "UTC", "holidays": {"ics": ["x.ics"]}}, "holidays.ics"),
    ]
    for definition, key in bad:
        with pytest.raises(InputError) as caught:
            calendars.put("broken", definition)
        assert caught.value.field == key, (definition, caught.value.message)
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(CalendarVersion)
                .where(CalendarVersion.name == "broken")
            ).scalar_one()
            == 0
        )


def test_known_at_uses_only_the_versions_known_then(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, clock, _ = store
    calendars.put("desk", DAY)
    source = calendars.source
    assert source.revision("desk") == 1
    clock.now = NOW
    calendars.put("desk", MORNING)  # effective now: Wednesday 14:00 Phoenix
    assert source.revision("desk") == 2
    noon = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)  # Wednesday 12:00 Phoenix
    thursday = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)  # Thursday 15:00 Phoenix
    # as known before the change: the day hours everywhere
    before = source.calendar("desk", known_at=NOW - timedelta(seconds=1))
    assert before.is_open(thursday)
    # as known now: the old hours before the change, the new ones after
    now = source.calendar("desk")
    assert now.is_open(noon) and not now.is_open(thursday)
    assert now.elapsed(noon, NOW) == timedelta(hours=2)
    assert source.calendar("desk", known_at=NOW).is_open(thursday) is False


def test_a_retroactive_version_is_known_from_its_start(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, _clock, _ = store
    calendars.put("desk", DAY)
    noon = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
    calendars.put("desk", MORNING, effective_from=noon, retroactive=True)
    one_pm = noon + timedelta(hours=1)
    # known from noon: an answer about 13:30 now counts the morning hours
    asked = source_at = calendars.source.calendar("desk", known_at=one_pm + timedelta(minutes=30))
    assert not asked.is_open(one_pm + timedelta(minutes=10))
    before = calendars.source.calendar("desk", known_at=noon - timedelta(minutes=1))
    assert before.is_open(one_pm + timedelta(minutes=10))
    del source_at


def test_retroactive_change_is_logged(store: tuple, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[type-arg]
    calendars, _, _ = store
    calendars.put("desk", DAY)
    caplog.set_level(logging.WARNING)
    calendars.put("desk", MORNING, effective_from=NOW - timedelta(days=1), retroactive=True)
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning and "desk" in warning[0].getMessage()
    assert "version 2" in warning[0].getMessage() and "retroactive" in warning[0].getMessage()


def test_each_append_queues_a_replan(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, _, engine = store
    calendars.put("desk", DAY)
    calendars.put("desk", MORNING)
    with engine.connect() as conn:
        jobs = conn.execute(sa.select(CalendarReplan.calendar, CalendarReplan.version)).all()
    assert jobs == [("desk", 2)]


# --- file calendars ------------------------------------------------------------------------

TEAM = weekdays_toml("Team")


def test_a_file_calendar_is_version_one_and_http_versions_stack_on_it(
    db_url: str, calendar_dir: Path
) -> None:
    (calendar_dir / "team.toml").write_text(TEAM)
    with calendar_store(db_url, Clock(NOW)) as (calendars, _):
        rows = calendars.changes.versions("team")
        assert [(r["version"], r["origin"], r["effective_from"]) for r in rows] == [
            (1, "file", None)
        ]
        assert rows[0]["definition"]["hours"]["mon"] == ["08:00-17:00"]
        added = calendars.put("team", MORNING)
        assert added.version == 2
        assert calendars.files.sync() == []  # the file did not change: nothing recorded


def test_an_edited_file_becomes_a_version_from_when_it_is_seen(
    db_url: str, calendar_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = calendar_dir / "team.toml"
    path.write_text(TEAM)
    with calendar_store(db_url, Clock(NOW)) as (calendars, _):
        thursday_3pm = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
        noon = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
        path.write_text(TEAM.replace("08:00-17:00", "08:00-13:00"))
        caplog.set_level(logging.INFO)
        assert calendars.files.sync() == [("team", 2)]
        assert any("team.toml changed" in r.getMessage() for r in caplog.records)
        assert calendars.files.sync() == []
        cal = calendars.source.calendar("team")
        assert cal.elapsed(noon, NOW) == timedelta(hours=2)  # the past keeps its hours
        assert not cal.is_open(thursday_3pm)
        versions = calendars.changes.versions("team")
        assert versions[1]["effective_from"] == NOW.isoformat()
    # a service started after another edit records it at start
    path.write_text(TEAM.replace("08:00-17:00", "09:00-17:00"))
    with calendar_store(db_url, Clock(NOW + timedelta(hours=2))) as (restarted, _):
        assert [v["version"] for v in restarted.changes.versions("team")] == [1, 2, 3]


def test_a_broken_file_edit_is_logged_and_the_stored_versions_stay(
    db_url: str, calendar_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = calendar_dir / "team.toml"
    path.write_text(TEAM)
    with calendar_store(db_url, Clock(NOW)) as (calendars, _):
        path.write_text(TEAM.replace("08:00-17:00", "8 to 5"))
        caplog.set_level(logging.ERROR)
        assert calendars.files.sync() == []
        assert calendars.files.sync() == []
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "team.toml" in errors[0]
        assert str(calendar_dir) not in errors[0]
        assert calendars.source.calendar("team").is_open(NOW)  # Wednesday 14:00: still open


# --- every process sees a new version -------------------------------------------------------


def test_another_process_source_sees_a_new_version_within_its_check(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, _, engine = store
    calendars.put("desk", DAY)
    other = StoredCalendars(make_engine(str(engine.url.render_as_string(hide_password=False))))
    try:
        assert other.revision("desk") == 1
        calendars.put("desk", MORNING)
        began = time.monotonic()
        while other.revision("desk") != 2:
            assert time.monotonic() - began < 2.0
            time.sleep(0.05)
        assert not other.calendar("desk").is_open(NOW + timedelta(hours=1))
    finally:
        other.close()
        other.engine.dispose()


def test_the_source_reads_inside_an_open_write_transaction(store: tuple) -> None:  # type: ignore[type-arg]
    """A ticket write asks for calendars while it holds SQLite's writer lock."""
    calendars, _, engine = store
    calendars.put("desk", DAY)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.execute(sa.text("select 1"))
        calendars.source.invalidate()
        started = time.monotonic()
        assert calendars.source.calendar("desk").is_open(NOW)
        assert time.monotonic() - started < 2.0


def test_unknown_calendar(store: tuple) -> None:  # type: ignore[type-arg]
    calendars, _, _ = store
    with pytest.raises(CalendarError):
        calendars.source.calendar("nope")
    assert not calendars.source.is_known("nope")
