"""Schemathesis cases of the API's OpenAPI operations, generated once per run.

The contract test (`test_api_contract.py`) sends the same cases to both databases' servers:
generation is derandomized and does not depend on the answers, and it takes most of the time,
so each operation's cases for a mode (and number of examples) are generated the first time
they are asked for and kept for the rest of the run. The fuzz test (`test_api_fuzz.py`) sends
the same cases again, checking the 4xx bodies.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

EXAMPLES = 25
"""Cases per operation and mode."""

_generated: dict[tuple[str, str, int], list[Any]] = {}


def generated_cases(operation: Any, mode: GenerationMode, examples: int = EXAMPLES) -> list[Any]:
    """The `examples` cases of `operation` in `mode` (fewer where its inputs allow fewer)."""
    key = (operation.label, mode.value, examples)
    if key not in _generated:
        cases: list[Any] = []

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
        _generated[key] = cases
    return _generated[key]


def can_be_invalid(operation: Any) -> bool:
    """Negative cases need an input that can be wrong: a body or a query parameter (any path
    segment is a string)."""
    return bool(len(operation.body) or len(operation.query))
