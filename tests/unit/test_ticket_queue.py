"""The queue's pure parts: the checked listing, its cursor, and a ticket's queue keys."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from sla_engine.core.clock import Event, TicketState, evaluate
from sla_engine.core.policies import MetricPolicy, Policy, default_policies
from sla_engine.errors import InputError
from sla_engine.storage.models import NO_BREACH, PAUSED
from sla_engine.ticket_queue import TICKET_STATUSES, decode_cursor, make_listing, queue_keys
from sla_engine.ticket_queue.listing import After, encode_cursor

T0 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 09:00 in Phoenix


def test_defaults() -> None:
    listing = make_listing()
    assert listing.statuses == ("open", "pending")
    assert (listing.order, listing.limit, listing.after) == ("breach_at", 50, None)


@pytest.mark.parametrize(
    ("text", "statuses"),
    [
        ("open", ("open",)),
        ("pending, open", ("open", "pending")),
        ("closed,solved,closed", ("solved", "closed")),
        ("all", TICKET_STATUSES),
    ],
)
def test_statuses(text: str, statuses: tuple[str, ...]) -> None:
    assert make_listing(status=text).statuses == statuses


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "open,frozen"}, "status"),
        ({"status": ""}, "status"),
        ({"status": "all,open"}, "status"),
        ({"order": "created_at"}, "order"),
        ({"metric": "first_reply"}, "metric"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        make_listing(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_cursor_round_trips_and_is_opaque_text() -> None:
    after = After("-created_at", "resolution", T0, "T-1/2 ü")
    text = encode_cursor(after)
    assert text.isascii() and "=" not in text and "T-1" not in text
    assert decode_cursor(text) == after
    listing = make_listing(order="-created_at", metric="resolution", cursor=text)
    assert listing.after == after


@pytest.mark.parametrize(
    "doc",
    [
        [2, "breach_at", None, T0.isoformat(), "T-1"],  # another version
        [1, "breach_at", None, "2026-11-23T16:00:00", "T-1"],  # naive
        [1, "sideways", None, T0.isoformat(), "T-1"],
        [1, "breach_at", "nope", T0.isoformat(), "T-1"],
        [1, "breach_at", None, T0.isoformat(), 7],
        [1, "breach_at", None, T0.isoformat()],
        {"order": "breach_at"},
    ],
)
def test_a_forged_cursor_is_refused(doc: object) -> None:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    with pytest.raises(InputError) as caught:
        decode_cursor(text)
    assert caught.value.field == "cursor"


def test_a_cursor_follows_only_its_own_order_and_metric() -> None:
    text = encode_cursor(After("breach_at", None, T0, "T-1"))
    for kwargs in ({"order": "-created_at"}, {"metric": "first_response"}):
        with pytest.raises(InputError) as caught:
            make_listing(cursor=text, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == "cursor"


# --- queue keys ----------------------------------------------------------------------------

POLICIES = {
    **default_policies(),
    "full": Policy(
        name="full",
        metrics={
            "first_response": MetricPolicy("first_response", "smartertools", timedelta(hours=4)),
            "resolution": MetricPolicy("resolution", "24x7", timedelta(hours=16), pausable=True),
        },
    ),
}


def state(
    policy: str, *events: tuple[str, timedelta], at: timedelta = timedelta(days=3)
) -> TicketState:
    log = [
        Event(event_id=f"e{n}", type=kind, occurred_at=T0 + offset, seq=n)
        for n, (kind, offset) in enumerate(events, 1)
    ]
    return evaluate("T", policy, T0, log, POLICIES, T0 + at)


def test_keys_of_a_running_clock_are_its_breach() -> None:
    running = state("standard", at=timedelta(hours=1))
    keys = queue_keys(running)
    assert keys.queue_breach_at == running.metrics["first_response"].breach_at
    assert keys.stopped_late is False and keys.calendars == {"smartertools"}


def test_keys_take_the_earliest_running_clock() -> None:
    both = state("full", at=timedelta(hours=1))
    metrics = both.metrics
    keys = queue_keys(both)
    assert keys.queue_breach_at == min(m.breach_at for m in metrics.values())
    assert keys.calendars == {"smartertools", "24x7"}


def test_a_ticket_paused_all_over_comes_after_the_running_clocks() -> None:
    waiting = state("full", ("agent_reply", timedelta(minutes=30)), ("pending", timedelta(hours=1)))
    keys = queue_keys(waiting)
    assert keys.queue_breach_at == PAUSED
    assert keys.calendars == {"24x7"}  # the paused resolution still runs
    assert keys.stopped_late is False


def test_a_late_stop_is_remembered_and_nothing_running_sorts_last() -> None:
    late = state("standard", ("agent_reply", timedelta(days=1)))
    keys = queue_keys(late)
    assert (keys.queue_breach_at, keys.stopped_late, keys.calendars) == (
        NO_BREACH,
        True,
        frozenset(),
    )
    on_time = queue_keys(state("standard", ("agent_reply", timedelta(minutes=5))))
    assert (on_time.queue_breach_at, on_time.stopped_late) == (NO_BREACH, False)
