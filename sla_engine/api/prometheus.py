"""Prometheus metrics of one app: HTTP traffic, plus SLA gauges read from the database.

Each app gets its own registry (several apps can live in one process, e.g. in tests). The
request counter and latency histogram are labelled by route *template* (`/v1/tickets/{ticket_id}`),
never by raw path, so label cardinality stays bounded. Ticket and breach numbers are computed
from the `tickets` / `ticket_metrics` rows at scrape time (`storage/sla_counts.py`): always
right, nothing to keep in sync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sla_engine.logging_setup import OutageLog
from sla_engine.metrics_dir import multiprocess_dir
from sla_engine.storage import sla_counts

if TYPE_CHECKING:
    from sla_engine.composition import Services

log = logging.getLogger("sla_engine.api")

UNMATCHED = "<unmatched>"
API_PREFIX = "/v1"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RUNNING_STATUSES = ("active", "paused")


class HttpMetrics:
    """Request count and latency by method, route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "sla_engine_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "sla_engine_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - began
            self.metrics.observe(scope["method"], route_template(scope), status, elapsed)


def route_template(scope: Scope) -> str:
    """The matched route's path template with the API prefix, e.g. `/v1/tickets/{ticket_id}`.

    A route of a router included under `/v1` knows only its own path; the prefix is put back.
    """
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return UNMATCHED
    if scope.get("path", "").startswith(API_PREFIX + "/") and not template.startswith(API_PREFIX):
        return API_PREFIX + template
    return str(template)


class SlaCollector(Collector):
    """Open tickets and SLA metrics by live status, counted from the database at scrape time.

    A metric row still `active`/`paused` whose `breach_at` has passed is counted as breached:
    the row reflects its last write, the clock keeps running.
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock
        self.outage = OutageLog("metrics", log)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        try:
            with self.sessions() as session:
                open_count = sla_counts.open_ticket_count(session)
                counts = sla_counts.metric_counts(session, now)
        except Exception as exc:  # a scrape must never fail because the database is away
            self.outage.failed(exc)
            return
        self.outage.recovered()
        open_tickets = GaugeMetricFamily("sla_engine_open_tickets", "Tickets not solved or closed")
        open_tickets.add_metric([], float(open_count))
        yield open_tickets
        yield from sla_gauges(live_counts(counts))


def live_counts(counts: Iterable[sla_counts.MetricCount]) -> dict[tuple[str, str], int]:
    """Rows per (metric, live status): a running row past its breach counts as breached."""
    live: dict[tuple[str, str], int] = {}
    for c in counts:
        late = c.late if c.status in RUNNING_STATUSES else 0
        for key, n in (((c.metric, c.status), c.total - late), ((c.metric, "breached"), late)):
            if n:
                live[key] = live.get(key, 0) + n
    return live


def sla_gauges(live: dict[tuple[str, str], int]) -> tuple[Metric, Metric]:
    """The metrics-by-status gauge and the breached-metrics gauge of the live counts."""
    by_status = GaugeMetricFamily(
        "sla_engine_sla_metrics",
        "SLA metrics (current cycle) by metric and live status",
        labels=["metric", "status"],
    )
    breached = GaugeMetricFamily(
        "sla_engine_breached_metrics",
        "SLA metrics breached (stopped late, or running past breach_at), by metric",
        labels=["metric"],
    )
    breaches: dict[str, int] = {}
    for (metric, status), n in sorted(live.items()):
        by_status.add_metric([metric, status], float(n))
        if status == "breached":
            breaches[metric] = breaches.get(metric, 0) + n
    for metric, n in sorted(breaches.items()):
        breached.add_metric([metric], float(n))
    return by_status, breached


class AppMetrics:
    """The registry of one app and what it holds."""

    def __init__(self, services: Services | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = HttpMetrics(self.registry)
        self.sla = None if services is None else SlaCollector(services.sessionmaker, services.clock)
        if self.sla is not None:
            self.registry.register(self.sla)

    def exposition(self) -> bytes:
        """This app's metrics, then the process-wide default registry (engine loops' metrics).

        Under `serve --workers N` (`PROMETHEUS_MULTIPROC_DIR` set) the counters and histograms
        are instead those of every process, summed by prometheus_client's multiprocess mode,
        so every process answers the same."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry)
            if self.sla is not None:
                registry.register(self.sla)
            return prometheus_client.generate_latest(registry)
        return prometheus_client.generate_latest(self.registry) + prometheus_client.generate_latest(
            prometheus_client.REGISTRY
        )
