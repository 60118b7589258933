"""Calendar definitions as stored data: JSON of the section 1 keys, from TOML text or a file.

A stored definition is self-contained: a file calendar's `[holidays] ics` files are read and
kept as `holidays.ics_text`, so neither a later edit of those files nor the server's paths
leak into what is stored or shown. Validation is the core's (`parse_calendar_definition`);
errors name the calendar, never a server path.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sla_engine.core.calendar_file import CalendarSpec
from sla_engine.errors import CalendarError
from sla_engine.json_types import JsonObject

MAX_DEFINITION_BYTES = 1024 * 1024
"""The largest definition accepted (TOML or JSON, `ics_text` included)."""


def plain(value: Any) -> Any:
    """TOML values as JSON values (TOML dates and times become ISO text)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def definition_from_toml(text: str, *, field: str = "body") -> JsonObject:
    """Calendar TOML text as a JSON-ready definition; malformed TOML names `field`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"invalid TOML: {exc}", field=field, value=str(exc)) from None
    except RecursionError:
        raise CalendarError("invalid TOML: nested too deeply", field=field, value=None) from None
    result: JsonObject = plain(data)
    return result


def parse_definition(
    definition: Mapping[str, Any],
    source: str,
    *,
    title: str | None = None,
    base_dir: Path | None = None,
) -> CalendarSpec:
    """Validate a definition (no `ics` paths unless `base_dir` is given); CalendarError
    names the key at fault. `title` stands in for a missing `name` key."""
    if not isinstance(definition, Mapping):
        raise CalendarError(
            f"{source}: definition must be a table of the calendar keys",
            field="definition",
            value=definition,
        )
    if title is not None and "name" not in definition:
        definition = {"name": title, **definition}
    from sla_engine.core import calendar_file

    parse = getattr(calendar_file, "parse_calendar_definition", None)
    if parse is None:  # the core without ICS support: plain section 1 keys only
        return calendar_file.parse_calendar(definition, source)
    spec: CalendarSpec = parse(
        definition, source=source, base_dir=base_dir, allow_ics_paths=base_dir is not None
    )
    return spec


@dataclass(frozen=True)
class FileContent:
    """What a calendar file says, as a stored definition, and the hash that identifies it."""

    definition: JsonObject
    content_hash: str


def read_file_definition(path: Path, name: str, *, label: str | None = None) -> FileContent:
    """A calendar file as a self-contained definition (ICS files inlined) and its hash.

    The hash covers the TOML text and every ICS file it names, so editing either is a change.
    Errors name `label` (default: the calendar's file name, never the server's path).
    """
    source = label or f"calendar file {name}.toml"
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(
            f"{source}: cannot read ({exc.__class__.__name__})", field="file", value=label or name
        ) from None
    digest = hashlib.sha256(raw)
    definition = definition_from_toml(text, field="file")
    holidays = definition.get("holidays")
    if isinstance(holidays, dict) and "ics" in holidays:
        texts = []
        ics = holidays["ics"]
        for entry in ics if isinstance(ics, list) else [ics]:
            ics_path = path.parent / str(entry)
            try:
                content = ics_path.read_bytes()
            except OSError:
                raise CalendarError(
                    f"{source}: holidays.ics: cannot read {entry!r}",
                    field="holidays.ics",
                    value=str(entry),
                ) from None
            digest.update(b"\0" + str(entry).encode() + b"\0" + content)
            texts.append(content.decode("utf-8", errors="replace"))
        holidays = {k: v for k, v in holidays.items() if k != "ics"}
        holidays["ics_text"] = texts[0] if len(texts) == 1 else _merged_ics(texts, source)
        definition["holidays"] = holidays
    return FileContent(definition, digest.hexdigest())


def _merged_ics(texts: list[str], source: str) -> str:
    """Several iCalendar files as one VCALENDAR holding all their components."""
    import icalendar

    merged = icalendar.Calendar()
    merged.add("prodid", "-//sla_engine//calendar store//EN")
    merged.add("version", "2.0")
    for index, text in enumerate(texts):
        try:
            parsed = icalendar.Calendar.from_ical(text)
        except ValueError as exc:
            raise CalendarError(
                f"{source}: holidays.ics[{index}]: not iCalendar text ({exc})",
                field=f"holidays.ics[{index}]",
                value=index,
            ) from None
        for component in parsed.subcomponents:
            merged.add_component(component)
    return str(merged.to_ical().decode("utf-8"))
