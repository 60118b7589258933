"""What an import run did, line by line: its counts, and each rejected line with its error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sla_engine.errors import SlaEngineError


@dataclass
class Counts:
    """What a run did, line by line."""

    lines: int = 0
    tickets: int = 0
    events: int = 0
    grants: int = 0
    subscriptions: int = 0
    duplicates: int = 0
    rejected: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Reject:
    line: int
    error: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error, "text": self.text}


def error_text(exc: SlaEngineError) -> str:
    """The error as one line naming its field (as the API's problem detail does)."""
    message = " ".join(exc.message.split())
    if exc.field and not message.startswith(exc.field):
        message = f"{exc.field}: {message}"
    return message
