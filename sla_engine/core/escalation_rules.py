"""What a policy's metric escalates: `EscalationRule` (before breach) and `RepeatRule` (after).

A rule's `at` is a share of the breach duration in business time (`"75%"`) or an offset
before breach (`"-15m"`); `parse_threshold` reads it. Planning and firing the notifications
is `sla_engine.escalation`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from sla_engine.core.durations import parse_duration
from sla_engine.core.toml_reader import reason
from sla_engine.errors import InputError

_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)%$")


def parse_threshold(text: object) -> tuple[float | None, timedelta | None]:
    """Split an escalation ``at`` into (fraction, offset): ``"75%"`` -> (0.75, None),
    ``"-15m"`` -> (None, 15 minutes before breach). Raises ``ValueError`` with the reason."""
    if not isinstance(text, str):
        raise ValueError("expected a string such as '75%' or '-15m'")
    text = text.strip()
    match = _FRACTION.match(text)
    if match:
        try:
            percent = Decimal(match.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise ValueError("not a percentage") from exc
        if not Decimal(0) < percent <= Decimal(100):
            raise ValueError("a percentage must be above 0% and at most 100%")
        return float(percent / 100), None
    if text.startswith("-"):
        offset = parse_duration(text[1:], "at")
        if offset <= timedelta(0):
            raise ValueError("an offset before breach must be longer than 0")
        return None, offset
    raise ValueError(
        "expected a share of the breach time such as '75%' or an offset before "
        "breach such as '-15m'"
    )


@dataclass(frozen=True)
class EscalationRule:
    """Notify ``to`` when a running metric reaches ``at`` (``"75%"`` of its breach duration in
    business time, or ``"-15m"`` business time before breach); ``during`` holds the
    notification until that calendar is open."""

    at: str
    to: str
    during: str | None = None

    def __post_init__(self) -> None:
        try:
            parse_threshold(self.at)
        except ValueError as exc:
            raise InputError(f"at {self.at!r}: {reason(exc)}", field="at", value=self.at) from exc

    @property
    def fraction(self) -> float | None:
        return parse_threshold(self.at)[0]

    @property
    def offset(self) -> timedelta | None:
        return parse_threshold(self.at)[1]

    def business_due(self, breach: timedelta) -> timedelta:
        """Business time after the clock's start at which this rule is due, for ``breach``."""
        fraction, offset = parse_threshold(self.at)
        if fraction is not None:
            return breach * fraction
        assert offset is not None
        return max(breach - offset, timedelta(0))


@dataclass(frozen=True)
class RepeatRule:
    """After breach, notify ``to`` again every ``every`` of real time until the metric stops."""

    every: timedelta
    to: str
    during: str | None = None
