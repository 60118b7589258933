"""Changing a calendar: the rules for a new version, and storing it (HTTP, CLI, Python).

A new calendar is version 1, in force from the beginning of time. A version appended to an
existing calendar is in force from `effective_from` (default: now); one before now must say
`retroactive` (it rewrites answers from then on, which is its purpose), and none may start
before the latest version. A file calendar is version 1 of its name. Every append queues a
re-plan of the stored rows of the tickets on that calendar, and moves the notifications held
for that calendar (`during`) to its new next opening in the same transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.calendar_store import store
from sla_engine.calendar_store.definitions import (
    FileContent,
    parse_definition,
    read_file_definition,
)
from sla_engine.calendar_store.source import StoredCalendars, chain_versions, compile_version
from sla_engine.calendar_store.store import VersionRow
from sla_engine.core.calendar import Calendar
from sla_engine.core.calendar_file import find_calendar_file
from sla_engine.core.times import is_aware, iso
from sla_engine.errors import CalendarError, Conflict, InputError, NotFound
from sla_engine.json_types import JsonObject

log = logging.getLogger(__name__)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_RETRIES = 5
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def check_name(name: object, field: str = "name") -> str:
    """A calendar name: letters, digits, `_ . -`, at most 100, not a file name."""
    if not isinstance(name, str) or not NAME.match(name) or name.endswith(".toml"):
        raise InputError(
            f"{field}: {name!r} is not a calendar name (letters, digits, '_', '.', '-'; at "
            "most 100 characters)",
            field=field,
            value=name,
        )
    return name


def check_definition(name: str, definition: Mapping[str, Any], at: datetime) -> None:
    """A definition that validates and has open time from `at` on; else CalendarError naming
    the key."""
    spec = parse_definition(definition, f"calendar {name!r}", title=name)
    try:
        Calendar(spec, name=name).next_open(at)
    except CalendarError:
        raise CalendarError(
            f"calendar {name!r}: hours: the calendar has no open time from {at.isoformat()} on",
            field="hours",
            value=definition.get("hours") if isinstance(definition, Mapping) else None,
        ) from None


@dataclass(frozen=True)
class Placement:
    """Where a new version goes: its `effective_from`, and whether it rewrites answers."""

    effective_from: datetime | None
    retroactive: bool

    def known_from(self, now: datetime) -> datetime | None:
        """When the version becomes known: its creation, or the start it rewrites from."""
        if self.effective_from is None:
            return None
        return self.effective_from if self.retroactive else now


def place_version(
    latest: VersionRow | None,
    effective_from: datetime | None,
    retroactive: bool,
    now: datetime,
) -> Placement:
    """The rules of section "calendars as versioned data" for a new version (pure)."""
    if effective_from is not None and not is_aware(effective_from):
        raise InputError(
            "effective_from needs a UTC offset (e.g. 2026-11-30T08:00:00-07:00)",
            field="effective_from",
            value=effective_from.isoformat(),
        )
    if latest is None:
        if effective_from is not None:
            raise InputError(
                "effective_from must be null when creating a calendar: version 1 is in force "
                "from the beginning of time",
                field="effective_from",
                value=effective_from.isoformat(),
            )
        return Placement(None, False)
    when = now if effective_from is None else effective_from
    if latest.effective_from is not None and when < latest.effective_from:
        raise Conflict(
            f"effective_from {when.isoformat()} is before version {latest.version}'s "
            f"{latest.effective_from.isoformat()}: versions follow one another",
            field="effective_from",
            value=when.isoformat(),
        )
    if when < now and not retroactive:
        raise Conflict(
            f"effective_from {when.isoformat()} is in the past: a change before now rewrites "
            "answers already given; mark the version retroactive to mean it",
            field="effective_from",
            value=when.isoformat(),
        )
    return Placement(when, when < now)


def move_held(session: Session, name: str, now: datetime, source: StoredCalendars | None) -> None:
    """Notifications held for NAME (`during`) wait for its next opening with the new version,
    committed with it. Versions stored before come compiled from `source`'s cache; those of
    this transaction (created `now`) are compiled here, their ids not final until the commit.
    Imported here: the escalation package is not needed to read calendars."""
    from sla_engine.escalation import holds as held

    def versions() -> Calendar:
        rows = store.versions_of(session, name)
        if source is None:
            return chain_versions(rows)
        return chain_versions(
            rows,
            lambda r: compile_version(r) if r.created_at >= now else source.version_calendar(r),
        )

    held.move_held(session, name, versions, now)


@dataclass(frozen=True)
class NewVersion:
    name: str
    version: int
    effective_from: datetime | None
    retroactive: bool

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "version": self.version,
            "effective_from": iso(self.effective_from),
        }


def version_view(row: VersionRow) -> JsonObject:
    return {
        "version": row.version,
        "effective_from": iso(row.effective_from),
        "created_at": iso(row.created_at),
        "retroactive": row.retroactive,
        "origin": row.origin,
        "definition": row.definition,
    }


def _transient(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def _file_content(name: str) -> FileContent | None:
    try:
        path = find_calendar_file(name)
    except CalendarError:
        return None
    return read_file_definition(path, name)


class CalendarChanges:
    """Appends versions and lists them; one short transaction per change."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        source: StoredCalendars | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.clock = clock

    def put(
        self,
        name: str,
        definition: Mapping[str, Any],
        *,
        effective_from: datetime | None = None,
        retroactive: bool = False,
        origin: str = "http",
    ) -> NewVersion:
        """Create NAME (version 1) or append a version; InputError (422) for a bad definition,
        Conflict (409) for an `effective_from` the rules refuse. Nothing is stored on error."""
        check_name(name)
        definition = dict(definition)
        check_definition(name, definition, effective_from or self.clock())
        for attempt in range(1, _RETRIES + 1):
            try:
                with self.sessions.begin() as session:
                    result, now = self._put(
                        session, name, definition, effective_from, retroactive, origin
                    )
                break
            except (IntegrityError, OperationalError) as exc:
                # a concurrent writer created the calendar first, or a deadlock: start over
                if attempt == _RETRIES or not _transient(exc):
                    raise
        if self.source is not None:
            self.source.invalidate()
        if result.retroactive:
            log.warning(
                "calendar %s version %d is retroactive: in force from %s, before it was made "
                "(%s); answers from then on change",
                name,
                result.version,
                result.effective_from.isoformat() if result.effective_from else None,
                now.isoformat(),
            )
        else:
            log.info(
                "calendar %s: version %d stored, in force from %s",
                name,
                result.version,
                "the beginning" if result.effective_from is None else result.effective_from,
            )
        return result

    def _put(
        self,
        session: Session,
        name: str,
        definition: JsonObject,
        effective_from: datetime | None,
        retroactive: bool,
        origin: str,
    ) -> tuple[NewVersion, datetime]:
        row = store.lock_calendar(session, name)
        now = self.clock()  # after the lock: "now" is after every version stored before
        if row is None:
            row = store.add_calendar(session, name, now)
            content = _file_content(name)
            if content is not None:
                store.append_version(
                    session,
                    row,
                    definition=content.definition,
                    effective_from=None,
                    known_from=None,
                    retroactive=False,
                    origin="file",
                    now=now,
                    content_hash=content.content_hash,
                )
        latest = store.latest_version(session, name) if row.latest_version else None
        placement = place_version(latest, effective_from, retroactive, now)
        version = store.append_version(
            session,
            row,
            definition=definition,
            effective_from=placement.effective_from,
            known_from=placement.known_from(now),
            retroactive=placement.retroactive,
            origin=origin,
            now=now,
        )
        if version > 1:
            store.add_replan(
                session, name, version, placement.effective_from, placement.retroactive, now
            )
            move_held(session, name, now, self.source)
        return NewVersion(name, version, placement.effective_from, placement.retroactive), now

    def record_file(self, name: str, content: FileContent) -> int | None:
        """Record a calendar file's content if it differs from what was last recorded:
        version 1 when the name is new, else a version in force from now. Returns the
        version stored (None when nothing changed)."""
        for attempt in range(1, _RETRIES + 1):
            try:
                with self.sessions.begin() as session:
                    version = self._record_file(session, name, content)
                break
            except (IntegrityError, OperationalError) as exc:
                if attempt == _RETRIES or not _transient(exc):
                    raise
        if version is not None and self.source is not None:
            self.source.invalidate()
        return version

    def _record_file(self, session: Session, name: str, content: FileContent) -> int | None:
        row = store.lock_calendar(session, name)
        now = self.clock()
        if row is None:
            row = store.add_calendar(session, name, now)
        elif row.file_hash == content.content_hash:
            return None  # another process recorded it first
        effective_from = None if row.latest_version == 0 else now
        version = store.append_version(
            session,
            row,
            definition=content.definition,
            effective_from=effective_from,
            known_from=effective_from and now,
            retroactive=False,
            origin="file",
            now=now,
            content_hash=content.content_hash,
        )
        if version > 1:
            store.add_replan(session, name, version, effective_from, False, now)
            move_held(session, name, now, self.source)
        return version

    def versions(self, name: str) -> list[JsonObject]:
        """NAME's versions, oldest first; a file calendar not recorded yet is its version 1."""
        check_name(name)
        with self.sessions.begin() as session:
            rows = store.versions_of(session, name)
        if rows:
            return [version_view(r) for r in rows]
        content = _file_content(name)
        if content is None:
            raise NotFound(f"no calendar {name!r}", field="name", value=name)
        return [
            {
                "version": 1,
                "effective_from": None,
                "created_at": None,
                "retroactive": False,
                "origin": "file",
                "definition": content.definition,
            }
        ]
