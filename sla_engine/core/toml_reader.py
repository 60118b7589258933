"""Checks shared by the config-file readers: every error names the file, the key and the value."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sla_engine.errors import ConfigError


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

    def unknown_keys(self, key: str, table: Mapping[str, object], allowed: Collection[str]) -> None:
        for name in table:
            if name not in allowed:
                full = f"{key}.{name}" if key else name
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
