"""The queue's pages are served by indexes, on SQLite and PostgreSQL: each statement walks an
index in the page's order and stops after `limit + 1` rows (no scan of a table, no sort of
every match), so a page costs the same with a million tickets as with a thousand.

PostgreSQL costs plans from table statistics, and at a few thousand rows a sort is cheaper
than an ordered walk; the test turns sorts, sequential and bitmap scans off so that the plan
shows what the indexes can serve. (`benchmarks/queue_latency.py --full --plans` prints the
plans chosen at a million tickets.)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.queue_latency import seed
from sla_engine.storage.db import make_engine
from sla_engine.storage.models import NO_BREACH
from sla_engine.ticket_queue import make_listing
from sla_engine.ticket_queue.listing import After
from sla_engine.ticket_queue.store import page_params, page_query

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STATUS_INDEX = "ix_tickets_status_queue_breach_at_id"
POLICY_INDEX = "ix_tickets_status_current_policy_queue_breach_at_id"
LATE_INDEX = "ix_tickets_status_stopped_late_queue_breach_at_id"
CREATED_INDEX = "ix_tickets_status_created_at_id"
METRIC_INDEX = "ix_ticket_metrics_metric_breach_at_ticket_id"
PAUSED_INDEX = "ix_ticket_metrics_metric_ticket_id"
CALENDAR_INDEX = "ix_ticket_queue_calendars_by_breach"
CALENDAR_CREATED_INDEX = "ix_ticket_queue_calendars_by_created"
LISTINGS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({}, (STATUS_INDEX,)),
    ({"status": "open"}, (STATUS_INDEX,)),
    ({"status": "all"}, (STATUS_INDEX,)),
    ({"policy": "emergency"}, (POLICY_INDEX,)),
    ({"calendar": "24x7"}, (CALENDAR_INDEX,)),
    ({"calendar": "24x7", "status": "pending"}, (CALENDAR_INDEX,)),
    ({"calendar": "smartertools", "policy": "standard"}, (CALENDAR_INDEX,)),
    ({"breached": True}, (STATUS_INDEX, LATE_INDEX)),
    ({"breached": False, "breach_before": NOW + timedelta(days=2)}, (LATE_INDEX,)),
    ({"metric": "resolution"}, (METRIC_INDEX, PAUSED_INDEX)),
    ({"metric": "first_response", "policy": "standard"}, (METRIC_INDEX, PAUSED_INDEX)),
    ({"order": "-created_at"}, (CREATED_INDEX,)),
    ({"order": "-created_at", "metric": "resolution"}, (CREATED_INDEX,)),
    ({"order": "-created_at", "calendar": "24x7"}, (CALENDAR_CREATED_INDEX,)),
]
SORTED_ROWS = re.compile(r"rows=(\d+)")
TABLES = ("tickets", "ticket_metrics", "running_metric", "ticket_queue_calendars")


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'queue.db'}"
    seed(url, 3_000, NOW)
    return url


@pytest.fixture(scope="module")
def seeded_pg() -> Any:
    from tests.conftest import pg_database

    with pg_database() as url:
        seed(url, 3_000, NOW)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue(f"seeded_{'pg' if request.param == 'postgresql' else 'sqlite'}")
    )


def plan_of(url: str, listing: Any) -> list[str]:
    query = page_query(listing).params(page_params(listing, NOW))
    engine = make_engine(url)
    try:
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.exec_driver_sql(f"SET {setting} = off")
            return [str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {sql}")]
    finally:
        engine.dispose()


def listings(params: dict[str, Any]) -> list[Any]:
    """The first page and a page after a cursor."""
    first = make_listing(**params)
    deep = replace(first, after=After(first.order, first.metric, NOW, "T-00001000"))
    return [first, deep]


@pytest.mark.parametrize(("params", "indexes"), LISTINGS, ids=lambda v: str(v))
def test_each_page_walks_an_index_in_its_order(
    seeded: str, params: dict[str, Any], indexes: tuple[str, ...]
) -> None:
    for listing in listings(params):
        plan = plan_of(seeded, listing)
        text = "\n".join(plan)
        assert all(index in text for index in indexes), text
        if seeded.startswith("sqlite"):
            assert not any(line.startswith(tuple(f"SCAN {t}" for t in TABLES)) for line in plan), (
                text
            )
            # the only sorts: of the walks' rows (at most limit + 1 each) as they merge
            for before, line in itertools.pairwise(plan):
                if "TEMP B-TREE" in line:
                    assert before.startswith(("SCAN anon_", "SCAN page")), text
        else:
            assert "Seq Scan" not in text and "Bitmap" not in text, text
            # Merge Append keeps the walks' order (its "Sort Key" is no sort); a Sort node only
            # ever orders one walk's cut rows (the paused metrics' walk, keyed by a constant)
            sorts = [line for line in plan if line.strip().lstrip("-> ").startswith("Sort  (")]
            assert all(int(SORTED_ROWS.search(line)[1]) <= listing.limit + 1 for line in sorts), (
                text
            )
            assert "Limit" in plan[0], text


@pytest.mark.parametrize("where", ["first page", "inside a run of equal keys"])
def test_the_walk_stops_after_a_page(seeded_pg: str, where: str) -> None:
    """PostgreSQL's own count: each index scan reads about `limit + 1` rows of the hundreds
    that match, also after a cursor in the middle of the tickets with nothing running (all
    keyed 9999-12-31: the id decides, on the index too)."""
    listing = make_listing(status="all", limit=20)
    if where != "first page":
        listing = replace(listing, after=After("breach_at", None, NO_BREACH, "T-00001500"))
    query = page_query(listing).params(page_params(listing, NOW))
    engine = make_engine(seeded_pg)
    try:
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            idle = conn.execute(
                sa.text("SELECT count(*) FROM tickets WHERE queue_breach_at = :end"),
                {"end": NO_BREACH},
            ).scalar_one()
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.exec_driver_sql(f"SET {setting} = off")
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").scalar_one()
    finally:
        engine.dispose()
    scans = list(_nodes(plan[0]["Plan"], "Index Scan"))
    assert len(scans) == 4, plan  # one per status
    assert idle > 1000
    assert all(scan["Actual Rows"] <= 21 for scan in scans), scans
    assert all(scan.get("Rows Removed by Filter", 0) == 0 for scan in scans), scans


def _nodes(node: dict[str, Any], kind: str) -> Any:
    if node["Node Type"] == kind:
        yield node
    for child in node.get("Plans", []):
        yield from _nodes(child, kind)
