"""Scratch databases for the benchmarks and the tests: a fresh PostgreSQL database, dropped
afterwards, or a SQLite file in a temporary folder.

`SLA_ENGINE_TEST_PG_ADMIN` overrides the admin URL (a database of the server one may create
databases from). Imported as `scratch_db` by the benchmark scripts (run from this folder)
and as `benchmarks.scratch_db` by the tests.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "SLA_ENGINE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def admin_engine(admin_url: str = PG_ADMIN_URL) -> sa.Engine:
    """An engine on the admin database, in autocommit (CREATE/DROP DATABASE need it)."""
    return sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


def create_database(admin: sa.Engine, prefix: str) -> str:
    """URL of a new, empty database named `prefix_<random>` on `admin`'s server."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin: sa.Engine, url: str) -> None:
    """Drop the database of `url`, ending its open connections."""
    name = sa.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def pg_database(prefix: str = "sla_scratch", admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped afterwards. Raises when the server
    cannot be reached."""
    admin = admin_engine(admin_url)
    try:
        url = create_database(admin, prefix)
        try:
            yield url
        finally:
            drop_database(admin, url)
    finally:
        admin.dispose()


@contextmanager
def optional_pg_database(prefix: str = "sla_bench") -> Iterator[str | None]:
    """`pg_database`, or None (and a line saying so) when there is no server to reach."""
    with ExitStack() as stack:
        try:
            url: str | None = stack.enter_context(pg_database(prefix))
        except Exception as exc:  # no server: report and go on with SQLite only
            print(f"PostgreSQL not available at {PG_ADMIN_URL} ({type(exc).__name__}); skipped")
            url = None
        yield url


@contextmanager
def scratch_database(kind: str, prefix: str = "sla_bench") -> Iterator[str]:
    """A fresh database of `kind` ("sqlite" or "postgresql"), gone afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    with pg_database(prefix) as url:
        yield url
