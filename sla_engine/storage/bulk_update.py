"""`UPDATE` of many rows by key, each with its own values, as one step on both databases.

PostgreSQL gets one statement over arrays (``UPDATE t SET ... FROM unnest(...) AS v WHERE
t.key = v.key``): one parse, one plan and one round trip for the whole batch, where an
executemany runs the statement once per row. SQLite gets the executemany (its rows cost
little, there is no server in between). The values are those the columns' types would bind:
aware datetimes (a `UTCDateTime` column is `timestamptz` on PostgreSQL, which keeps the
instant whatever the zone given).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa


def update_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """For each row, set ``columns[1:]`` of the row of `table` whose ``columns[0]`` (its
    key) is the row's first value."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        arrays = {f"v{i}": list(values) for i, values in enumerate(zip(*rows, strict=True))}
        conn.execute(_pg_statement(table, tuple(columns), conn.dialect), arrays)
        return
    key, *rest = columns
    conn.execute(
        _by_key(table, key),
        [{"b_key": row[0], **dict(zip(rest, row[1:], strict=True))} for row in rows],
    )


@lru_cache(maxsize=64)
def _by_key(table: sa.Table, key: str) -> sa.Update:
    return sa.update(table).where(table.c[key] == sa.bindparam("b_key"))


@lru_cache(maxsize=64)
def _pg_statement(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> sa.TextClause:
    def array_of(name: str) -> str:
        column_type = table.c[name].type
        if isinstance(column_type, sa.types.TypeDecorator):
            column_type = column_type.impl_instance
        return f"{column_type.compile(dialect=dialect)}[]"

    quote = dialect.identifier_preparer.quote
    key, *rest = (quote(name) for name in columns)
    arrays = ", ".join(f"CAST(:v{i} AS {array_of(name)})" for i, name in enumerate(columns))
    sets = ", ".join(f"{name} = v.{name}" for name in rest)
    names = ", ".join(quote(name) for name in columns)
    return sa.text(
        f"UPDATE {quote(table.name)} AS t SET {sets} "
        f"FROM unnest({arrays}) AS v({names}) WHERE t.{key} = v.{key}"
    )
