"""Calendar files as versions: a file's content, when it changes, becomes a new version.

The first content seen of a calendar file is its version 1; an edit seen later (by a running
service, or by one restarted after the edit) is recorded as a version in force from when it
was first seen, so editing a file never rewrites the past. Every process runs the check (at
start and then every second); the content hash on the calendar's row makes the record happen
once. A file that no longer validates is logged once per content and otherwise ignored: the
versions already stored stay in force.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from sla_engine.calendar_store import store
from sla_engine.calendar_store.changes import CalendarChanges
from sla_engine.calendar_store.definitions import (
    FileContent,
    parse_definition,
    read_file_definition,
)
from sla_engine.core.calendar_file import calendar_names, find_calendar_file
from sla_engine.errors import CalendarError

log = logging.getLogger(__name__)


class FileVersions:
    """Records calendar file contents as versions (see the module docstring)."""

    def __init__(self, changes: CalendarChanges, reader: sa.engine.Engine) -> None:
        self.changes = changes
        self.reader = reader
        self._reported: set[tuple[str, str]] = set()

    def contents(self) -> dict[str, FileContent]:
        """The valid calendar files reachable by name, read now."""
        found: dict[str, FileContent] = {}
        for name in calendar_names():
            try:
                content = read_file_definition(find_calendar_file(name), name)
                parse_definition(content.definition, f"calendar {name!r}", title=name)
            except CalendarError as exc:
                self._report(name, exc)
                continue
            found[name] = content
        return found

    def sync(self) -> list[tuple[str, int]]:
        """Record every file whose content differs from its last recorded content; returns
        the (name, version) pairs stored."""
        contents = self.contents()
        if not contents:
            return []
        with self.reader.connect() as conn:
            recorded = store.file_hashes(conn)
            conn.rollback()
        stored = []
        for name, content in contents.items():
            if recorded.get(name, "") == content.content_hash:
                continue
            version = self.changes.record_file(name, content)
            if version is None:
                continue
            stored.append((name, version))
            if version == 1:
                log.info("calendar file %s.toml recorded as version 1 of %s", name, name)
            else:
                log.warning(
                    "calendar file %s.toml changed: recorded as version %d of %s, in force "
                    "from now on (earlier answers keep the earlier hours)",
                    name,
                    version,
                    name,
                )
        return stored

    def _report(self, name: str, exc: CalendarError) -> None:
        key = (name, exc.message)
        if key in self._reported:
            return
        self._reported.add(key)
        log.error(
            "calendar file %s.toml is not valid, the versions already stored stay in force: %s",
            name,
            exc.message,
        )
