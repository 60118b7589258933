"""Alembic environment: runs on the connection `storage.db.upgrade` hands over.

Run without one (e.g. from the alembic command line), it opens the `sqlalchemy.url` option
with the engine's own settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from sla_engine.storage.db import load_model_modules, make_engine

target_metadata = load_model_modules()


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set the sqlalchemy.url option or pass a connection")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
