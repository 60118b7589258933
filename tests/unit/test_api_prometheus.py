"""The SLA gauges' arithmetic (pure): stored metric rows to live statuses and breach counts."""

from __future__ import annotations

from sla_engine.api.prometheus import live_counts, route_template, sla_gauges
from sla_engine.storage.sla_counts import MetricCount


def test_a_running_row_past_its_breach_counts_as_breached() -> None:
    live = live_counts(
        [
            MetricCount("first_response", "active", total=5, late=2),
            MetricCount("first_response", "paused", total=1, late=1),
            MetricCount("first_response", "breached", total=4, late=4),
            MetricCount("resolution", "achieved", total=3, late=3),  # stopped: late is moot
        ]
    )
    assert live == {
        ("first_response", "active"): 3,
        ("first_response", "breached"): 7,
        ("resolution", "achieved"): 3,
    }


def test_the_gauges_list_statuses_and_breaches_per_metric_in_order() -> None:
    by_status, breached = sla_gauges(
        {("resolution", "breached"): 1, ("first_response", "active"): 2}
    )
    assert [(s.labels, s.value) for s in by_status.samples] == [
        ({"metric": "first_response", "status": "active"}, 2.0),
        ({"metric": "resolution", "status": "breached"}, 1.0),
    ]
    assert [(s.labels, s.value) for s in breached.samples] == [({"metric": "resolution"}, 1.0)]


def test_requests_are_labelled_by_route_template_with_the_api_prefix() -> None:
    class Route:
        path = "/tickets/{ticket_id}"

    assert (
        route_template({"route": Route(), "path": "/v1/tickets/T-1"}) == "/v1/tickets/{ticket_id}"
    )
    assert route_template({"path": "/nowhere"}) == "<unmatched>"
