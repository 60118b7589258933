"""A real HTTP server over fresh services, and a census of the rows its database holds.

Shared by the API test modules (a test module imports from here, never from another test
module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from sla_engine.api import create_app
from sla_engine.composition import Services, build_services
from sla_engine.config import load_config
from tests.support.server import serve_app

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@contextmanager
def running_api(
    url: str, *, clock: Callable[[], datetime] = lambda: NOW, token: str | None = None
) -> Iterator[tuple[httpx.Client, Services]]:
    """A real server over fresh services on `url`; yields (client, services)."""
    services = build_services(load_config(None, env={}, database_url=url), clock=clock)
    try:
        app = create_app(services, api_token=token)
        with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client, services
    finally:
        services.close()


def row_counts(services: Services) -> dict[str, int]:
    """Rows in every table of the database: 'nothing was written' means these stay equal."""
    with services.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        return {
            t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one())
            for t in tables
            if t != "alembic_version"
        }
