"""Checks shared by the config-file readers: every error names the file, the key and the value."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sla_engine.errors import ConfigError

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(parent: str, key: object) -> str:
    """The field that names a user's key under `parent`: `hours.mon`, `closures[0].start`.

    A key that is empty or not a plain name is quoted as JSON (`""`, `"a.b c"`), so the field
    is never blank and a dot inside a key cannot read as nesting.
    """
    text = str(key)
    name = text if _PLAIN_KEY.match(text) else json.dumps(text)
    return f"{parent}.{name}" if parent else name


@dataclass
class TableReader:
    """Reads values out of one parsed TOML document, refusing bad ones with a ConfigError."""

    file: str

    def error(self, key: str, value: object, reason: str) -> ConfigError:
        return ConfigError(f"{self.file}: {key} = {value!r}: {reason}", field=key, value=value)

    def table(self, key: str, value: object) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.error(key, value, "expected a table")
        return value

    def keyed_table(
        self, key: str, value: object, allowed: Collection[str], required: Collection[str]
    ) -> Mapping[str, object]:
        """`value` as a table of only `allowed` keys that has every `required` one."""
        table = self.table(key, value)
        self.unknown_keys(key, table, allowed)
        for name in required:
            if name not in table:
                raise self.error(key, dict(table), f"missing '{name}'")
        return table

    def unknown_keys(self, key: str, table: Mapping[str, object], allowed: Collection[str]) -> None:
        for name in table:
            if name not in allowed:
                full = key_path(key, name)
                raise self.error(
                    full, table[name], f"unknown key (expected one of: {', '.join(allowed)})"
                )

    def string(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, value, "expected a non-empty string")
        return value


def reason(exc: BaseException) -> str:
    """The text of an error for a message: its `message` (engine errors), else str(exc), else
    its type's name."""
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
