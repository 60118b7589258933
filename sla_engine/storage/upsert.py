"""`INSERT ... ON CONFLICT DO NOTHING` for both databases: insert rows unless their key exists.

SQLite and PostgreSQL spell the statement alike but SQLAlchemy builds it from each dialect's
own `insert`; this is the one place that picks it. Used where two writers may insert the same
key at once (an account's lock row, a delivery's stable id, a disabled destination, an event
id) and the first one must win without an error or a read-then-write race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

Insertable = type[DeclarativeBase] | sa.Table


def insert_ignoring(
    table: Insertable, dialect: str, *, index_elements: Sequence[str] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """The statement for `dialect` ("postgresql" or "sqlite"): build it once and reuse it on a
    hot path (add `.returning(...)` to learn which rows went in)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    target = table if isinstance(table, sa.Table) else cast(sa.Table, table.__table__)
    return insert(target).on_conflict_do_nothing(index_elements=index_elements)


def insert_ignoring_duplicates(
    session: Session,
    table: Insertable,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    index_elements: Sequence[str] | None = None,
) -> None:
    """Insert `rows` (one mapping or many, executed as one statement) into `table` (a mapped
    class or a `Table`); a row whose key exists (`index_elements`, default: any unique key)
    is left as it is."""
    dialect = session.get_bind().dialect.name
    statement = insert_ignoring(table, dialect, index_elements=index_elements)
    if isinstance(rows, Mapping):
        session.execute(statement.values(dict(rows)))
    elif rows:
        session.execute(statement, list(rows))
