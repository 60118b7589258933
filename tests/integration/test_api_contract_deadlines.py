"""`POST /v1/deadlines/batch` answers, item for item, what `POST /v1/deadlines` answers.

The batch formatter has separate branches for responses whose answers are all whole seconds
and for those with microseconds; both are exercised, alone and mixed, on calendars with and
without daylight-saving time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import running_api

WHOLE_SECOND = [
    ("2026-11-20T13:00:00-07:00", "4h"),  # the issue's example: Monday 08:00
    ("2026-11-20T13:00:01-07:00", "4h"),
    ("2026-03-06T16:59:59-07:00", 1),
]
WHOLE_MINUTE = [
    ("2026-11-20T13:00:00-07:00", "90m"),
    ("2026-11-20T16:59:00-07:00", "1h30m"),
    ("2026-12-31T08:00:00Z", "45s"),
]
SUB_SECOND = [
    ("2026-11-20T13:00:00.250000-07:00", "4h"),
    ("2026-11-20T13:00:00-07:00", 0.5),
    ("2026-03-07T23:59:59.999999-05:00", "2h"),
]
INPUT_SETS = {
    "whole-second": WHOLE_SECOND,
    "whole-minute": WHOLE_MINUTE,
    "sub-second": SUB_SECOND,
    "mixed": WHOLE_SECOND + SUB_SECOND + WHOLE_MINUTE,
    "one-whole": WHOLE_SECOND[:1],
    "one-precise": SUB_SECOND[:1],
}
CALENDARS = ["smartertools", "24x7", "example-overnight-shift"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('batch') / 'sla.db'}"
    with running_api(url) as (api, _):
        yield api


def single(client: httpx.Client, calendar: str, start: str, duration: Any) -> str:
    answer = client.post(
        "/v1/deadlines", json={"calendar": calendar, "start": start, "duration": duration}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["deadline"])


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("inputs", sorted(INPUT_SETS))
def test_batch_equals_single(client: httpx.Client, calendar: str, inputs: str) -> None:
    items = INPUT_SETS[inputs]
    answer = client.post(
        "/v1/deadlines/batch",
        json={"calendar": calendar, "items": [{"start": s, "duration": d} for s, d in items]},
    )
    assert answer.status_code == 200, answer.text
    expected = [single(client, calendar, s, d) for s, d in items]
    assert answer.json()["deadlines"] == expected


def test_the_issue_example(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/deadlines/batch",
        json={
            "calendar": "smartertools",
            "items": [{"start": "2026-11-20T13:00:00-07:00", "duration": "4h"}],
        },
    )
    assert answer.json()["deadlines"] == ["2026-11-23T08:00:00-07:00"]
