"""`UPDATE` of many rows by key, each with its own values, as one step on both databases.

PostgreSQL gets one statement over the rows sent as one JSON parameter (``UPDATE t SET ...
FROM json_to_recordset(:rows) AS v(...) WHERE t.key = v.key``): one parse, one plan and one
round trip for the whole batch, where an executemany runs the statement once per row. The
rows are encoded by `json.dumps` (in C); arrays, which the driver dumps value by value in
Python, cost the client more than the statement saved. SQLite gets an executemany of a plain
statement (its rows cost little, there is no server in between), the values put through the
columns' bind processors, without SQLAlchemy's per-row parameter handling (a `UTCDateTime`
becomes its stored text in one step, not three; a run of one value, such as `now` in every
row, is converted once). The values are those the columns' types take: aware datetimes (a
`UTCDateTime` column is `timestamptz` on PostgreSQL, which keeps the instant whatever the
zone given), JSON values as Python objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from sla_engine.storage.types import UTCDateTime

Processor = Callable[[Any], Any] | None


class JsonText(str):
    """A JSON column's value given as its JSON text (encoded already, e.g. to compare it with
    the stored one): `update_rows` writes the text as it is, instead of encoding again."""


@dataclass(frozen=True)
class _Statement:
    sql: str
    bound: tuple[tuple[int, Processor], ...]
    """SQLite: each parameter's place in a row and the column type's bind processor."""
    json_columns: tuple[str, ...] = ()
    """PostgreSQL: the JSON columns set (whose values may be `JsonText`)."""
    instants: tuple[int, ...] = ()
    """PostgreSQL: the places of the `UTCDateTime` columns in a row (sent as ISO text)."""


@dataclass(frozen=True, slots=True)
class _Raw:
    index: int  # of the text in the row set's list of `JsonText` values


_RAW_MARK = re.compile(r'"\\u0000raw:(\d+)\\u0000"')


def update_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    keys: int = 1,
) -> None:
    """For each row, set ``columns[keys:]`` of the row of `table` whose key columns
    ``columns[:keys]`` have the row's first ``keys`` values. None is SQL NULL (a JSON
    column's too)."""
    if not rows:
        return
    statement = _statement(table, tuple(columns), keys, conn.dialect)
    if conn.dialect.name == "postgresql":
        if statement.instants:  # as text before encoding: a run of one value (now) once
            by_column = list(zip(*rows, strict=True))
            for i in statement.instants:
                by_column[i] = tuple(_processed(_instant_text, by_column[i]))
            rows = list(zip(*by_column, strict=True))
        objects = [dict(zip(columns, row, strict=True)) for row in rows]
        texts: list[str] = []
        for name in statement.json_columns:
            for item in objects:
                if isinstance(item[name], JsonText):
                    texts.append(item[name])
                    item[name] = _Raw(len(texts) - 1)
        text = json.dumps(objects, default=_json_value, allow_nan=False, separators=(",", ":"))
        if texts:  # each JSON text in place of its marker
            text = _RAW_MARK.sub(lambda found: texts[int(found[1])], text)
        conn.exec_driver_sql(statement.sql, {"rows": text})
        return
    by_column = list(zip(*rows, strict=True))
    bound = [
        by_column[i] if process is None else _processed(process, by_column[i])
        for i, process in statement.bound
    ]
    conn.exec_driver_sql(statement.sql, list(zip(*bound, strict=True)))


def one_of(column: sa.ColumnElement[Any], name: str, dialect: sa.Dialect) -> sa.ColumnElement[bool]:
    """``column`` (text: ids) is one of the list given as parameter ``name``. On PostgreSQL
    one array parameter (``= ANY(...)``, planned as the ``IN`` list is): a list of a batch's
    200 placeholders made psycopg parse the statement anew on every run (it keeps only short
    ones), which cost more than the query. The array is sent as its text and cast on the
    server: psycopg's list adaptation cost about 0.6 us an element of client CPU, the text
    (`array_text`) 0.1 us. Elsewhere an expanding ``IN``."""
    if dialect.name == "postgresql":
        given = sa.cast(sa.bindparam(name, type_=_ArrayText()), sa.ARRAY(column.type))
        return column == sa.any_(given)
    return column.in_(sa.bindparam(name, expanding=True))


def array_text(values: Sequence[str]) -> str:
    """A PostgreSQL array literal of `values`, each element quoted (so NULL, commas, braces
    and spaces are plain text), backslashes and double quotes escaped."""
    return (
        "{"
        + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values])
        + "}"
    )


class _ArrayText(sa.types.TypeDecorator[Sequence[str]]):
    """A list of text values bound as its array literal (`array_text`)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[str] | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else array_text(value)


@lru_cache(maxsize=64)
def _statement(
    table: sa.Table, columns: tuple[str, ...], keys: int, dialect: sa.Dialect
) -> _Statement:
    if not 0 < keys < len(columns):
        raise ValueError(f"keys={keys}: must leave 1 to {len(columns) - 1} columns to set")
    quote = dialect.identifier_preparer.quote
    names = [quote(name) for name in columns]
    key, rest = names[:keys], names[keys:]
    if dialect.name == "postgresql":
        # the record's fields typed as the columns' own types (a `UTCDateTime` is timestamptz)
        fields = ", ".join(
            f"{name} {_impl(table.c[column].type).compile(dialect=dialect)}"
            for name, column in zip(names, columns, strict=True)
        )
        sets = ", ".join(f"{name} = v.{name}" for name in rest)
        where = " AND ".join(f"t.{name} = v.{name}" for name in key)
        return _Statement(
            sql=(
                f"UPDATE {quote(table.name)} AS t SET {sets} "
                f"FROM json_to_recordset(CAST(%(rows)s AS json)) AS v({fields}) WHERE {where}"
            ),
            bound=(),
            json_columns=tuple(c for c in columns[keys:] if isinstance(table.c[c].type, sa.JSON)),
            instants=tuple(
                i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime)
            ),
        )
    sets = ", ".join(f"{name} = ?" for name in rest)
    where = " AND ".join(f"{name} = ?" for name in key)
    return _Statement(
        sql=f"UPDATE {quote(table.name)} SET {sets} WHERE {where}",
        bound=tuple(
            (i, _processor(table.c[columns[i]].type, dialect))
            for i in (*range(keys, len(columns)), *range(keys))
        ),
    )


def _impl(column_type: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    if isinstance(column_type, sa.types.TypeDecorator):
        return column_type.impl_instance
    return column_type


def _processor(column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Processor:
    if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc_text
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(column_type, sa.JSON) and process is not None:
        return _json_processor(process)
    return process


def _json_processor(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column's processor that passes `JsonText` through as it is."""

    def encoded(value: Any) -> Any:
        return value if isinstance(value, JsonText) else process(value)

    return encoded


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What a `UTCDateTime` column stores on SQLite for `value` (the text SQLAlchemy's own
    processors write: UTC, microseconds always), in one step; a naive value is refused."""
    if value is None:
        return None
    try:
        since = value - _EPOCH  # exact, the offset (and fold) included
    except TypeError:
        raise ValueError("naive datetime given to a UTCDateTime column") from None
    return (_NAIVE_EPOCH + since).isoformat(" ", "microseconds")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


_NOTHING = object()


def _processed(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """`process` over `values`, once per run of the same object (`now`, None)."""
    done: list[Any] = []
    last: Any = _NOTHING
    out: Any = None
    for value in values:
        if value is not last:
            last, out = value, process(value)
        done.append(out)
    return done


def _instant_text(value: Any) -> Any:
    """A `UTCDateTime` column's value as `json.dumps` would send it (a datetime as
    `_json_value` makes it, anything else as it is)."""
    return _json_value(value) if isinstance(value, datetime) else value


def _json_value(value: Any) -> Any:
    """A value `json.dumps` does not take itself: an aware datetime, as ISO 8601 text with
    its offset (which PostgreSQL reads back as the same instant)."""
    if isinstance(value, _Raw):  # a `JsonText`, put back in place of this marker
        return f"\x00raw:{value.index}\x00"
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to update_rows")
        return value.isoformat()
    raise TypeError(f"update_rows cannot send {type(value).__name__} {value!r}")
