"""Which calendar holds a delivery: the `during` of the first target to its destination."""

from __future__ import annotations

import json

from sla_engine.escalation.holds import during_of


def targets(*items: tuple[str, str | None]) -> str:
    return json.dumps([{"to": to, "during": during} for to, during in items])


def test_the_first_target_to_the_destination_decides() -> None:
    text = targets(("pd", None), ("oncall", "office"), ("oncall", "other"))
    assert during_of(text, "oncall") == "office"
    assert during_of(text, "pd") is None


def test_a_destination_not_among_the_targets_has_no_hold() -> None:
    assert during_of(targets(("oncall", "office")), "gone") is None
    assert during_of("[]", "oncall") is None
