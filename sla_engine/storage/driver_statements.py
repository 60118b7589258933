"""Hot statements run on the database driver's cursor: a ticket write's, and the batch reads
of a re-plan on PostgreSQL (`read_rows`).

Each is a Core statement compiled once per dialect. Values pass through the same type
processors SQLAlchemy applies (the column types' bind and result processors), driver errors
are raised as SQLAlchemy's (`IntegrityError`, `OperationalError`, ... with `.orig`), and
`before_cursor_execute` listeners still see each statement (`after_cursor_execute` ones do
not). What is left out is SQLAlchemy's execution layer (execution context, result metadata),
which cost more than the statements themselves: per in-order event on SQLite (in-process, CPU)
the ticket row went from 157 to 90 us (BEGIN included), the event insert from 80 to 36 us and
the ticket update from 70 to 33 us.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.interfaces import DBAPICursor, DBAPIModule
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

# Values here are the driver's (whatever a column type binds or a driver answers), so rows,
# parameter sets, processors and column types stay dynamic; the seams around them are typed.
Processor = Callable[[Any], Any] | None
Bound = tuple[object, ...] | dict[str, object]
"""A parameter set as the driver takes it: positional or by name, values processed."""


KEPT_CURSOR = "sla_engine.kept_cursor"
"""The key of psycopg's kept cursor in a pooled connection's `info`."""


def _cursor(connection: Connection) -> DBAPICursor:
    """A cursor of the connection's driver connection. psycopg's is kept in the pooled
    connection's `info` and used again by the next statement (making and closing one cost
    about 12 Python calls, a fifth of psycopg's own per statement); others are new."""
    fairy = connection.connection
    dbapi_connection = fairy.dbapi_connection
    assert dbapi_connection is not None
    if connection.dialect.driver != "psycopg":
        return dbapi_connection.cursor()
    info = fairy.info
    kept = info.get(KEPT_CURSOR)
    if kept is None or kept.closed or kept.connection is not dbapi_connection:
        kept = info[KEPT_CURSOR] = dbapi_connection.cursor()
    return cast(DBAPICursor, kept)


def _release(connection: Connection, cursor: DBAPICursor) -> None:
    """Done with `cursor`: closed unless it is the kept one (SQLite's is closed, which also
    ends its statement)."""
    if connection.dialect.driver != "psycopg":
        cursor.close()


def _forget(connection: Connection) -> None:
    """After a driver error: no cursor kept (before `_wrapped` may invalidate the
    connection; the caller closes the cursor)."""
    if connection.dialect.driver == "psycopg":
        connection.connection.info.pop(KEPT_CURSOR, None)


@dataclass
class _Compiled:
    sql: str
    names: list[str]
    positional: bool
    binds: list[Processor]
    results: list[Processor] | None = None  # set from the first answer's column types


@dataclass
class DriverStatement:
    """A Core statement run on the driver's cursor of the connection given.

    ``returns``: the types of the columns it answers (SELECT or RETURNING), in order."""

    statement: ClauseElement
    returns: Sequence[TypeEngine[Any]] = ()
    _by_dialect: dict[Dialect, _Compiled] = field(default_factory=dict)

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of the answer, its values converted as SQLAlchemy would; or None."""
        compiled = self._compiled(connection.dialect)
        row, results = self._fetched(connection, compiled, params, every=False)
        if row is None:
            return None
        # a list comprehension, not a generator: no resumption per column
        return tuple(
            [
                value if process is None else process(value)
                for value, process in zip(row, results, strict=True)
            ]
        )

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of the answer (fetched at once), values converted as SQLAlchemy would."""
        compiled = self._compiled(connection.dialect)
        rows, results = self._fetched(connection, compiled, params, every=True)
        converting = [(i, p) for i, p in enumerate(results) if p is not None]
        if not converting:
            return [tuple(row) for row in rows]
        done = []
        for row in rows:
            values = list(row)
            for i, process in converting:
                values[i] = process(values[i])
            done.append(tuple(values))
        return done

    def run(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (one executemany for several); no answer read."""
        if rows:
            _release(connection, self._run(connection, self._compiled(connection.dialect), rows))

    # -- internals --

    def _fetched(
        self, connection: Connection, compiled: _Compiled, params: Mapping[str, Any], *, every: bool
    ) -> tuple[Any, list[Processor]]:
        """Run the statement and fetch its first row (or every row), with the result
        processors (learnt from the first answer). The cursor is released (psycopg's is
        kept) unless the driver failed."""
        cursor = self._run(connection, compiled, [params])
        failed = False
        try:
            found = cursor.fetchall() if every else cursor.fetchone()
            if compiled.results is None:
                compiled.results = self._result_processors(connection.dialect, cursor)
        except connection.dialect.loaded_dbapi.Error as error:
            failed = True
            _forget(connection)
            raise self._wrapped(connection, compiled, params, error, cursor) from error
        finally:
            if failed:
                cursor.close()
            else:
                _release(connection, cursor)
        assert compiled.results is not None
        return found, compiled.results

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect)
        if found is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            positional = bool(compiled.positional)
            names = list(compiled.positiontup or ()) if positional else list(compiled.binds)
            if compiled.escaped_bind_names:
                raise ValueError(
                    f"parameter names that need escaping: {compiled.escaped_bind_names}"
                )
            binds = [compiled.binds[name].type.dialect_impl(dialect) for name in names]
            found = _Compiled(
                sql=compiled.string,
                names=names,
                positional=positional,
                binds=[t.bind_processor(dialect) for t in binds],
            )
            self._by_dialect[dialect] = found
        return found

    def _result_processors(self, dialect: Dialect, cursor: DBAPICursor) -> list[Processor]:
        described = cursor.description or ()
        if len(described) != len(self.returns):
            raise AssertionError(f"{len(described)} columns answered, {len(self.returns)} typed")
        return [
            type_.dialect_impl(dialect).result_processor(dialect, column[1])
            for type_, column in zip(self.returns, described, strict=True)
        ]

    def _run(
        self, connection: Connection, compiled: _Compiled, rows: Sequence[Mapping[str, Any]]
    ) -> DBAPICursor:
        dialect = connection.dialect
        bound = [self._bound(compiled, row) for row in rows]
        many = len(bound) > 1
        cursor = _cursor(connection)
        # SQLAlchemy's own guard: the joined dispatcher is looked at only when the connection
        # or its engine has listeners of any kind
        if connection._has_events or connection.engine._has_events:
            listeners = connection.dispatch.before_cursor_execute
            if listeners:
                listeners(connection, cursor, compiled.sql, bound if many else bound[0], None, many)
        try:
            if many:
                # all positional or all by name (the compiled statement's style)
                cursor.executemany(compiled.sql, cast("list[tuple[object, ...]]", bound))
            else:
                cursor.execute(compiled.sql, bound[0])
        except dialect.loaded_dbapi.Error as error:
            _forget(connection)
            wrapped = self._wrapped(connection, compiled, bound, error, cursor)
            cursor.close()
            raise wrapped from error
        return cursor

    @staticmethod
    def _bound(compiled: _Compiled, row: Mapping[str, Any]) -> Bound:
        values = [
            row[name] if process is None else process(row[name])
            for name, process in zip(compiled.names, compiled.binds, strict=True)
        ]
        if compiled.positional:
            return tuple(values)
        return dict(zip(compiled.names, values, strict=True))

    @staticmethod
    def _wrapped(
        connection: Connection,
        compiled: _Compiled,
        params: Mapping[str, Any] | Sequence[Bound],
        error: Exception,
        cursor: DBAPICursor,
    ) -> exc.StatementError:
        """The driver's error as SQLAlchemy raises it; a lost connection is invalidated (the
        pool replaces it) and flagged `connection_invalidated`, as SQLAlchemy does."""
        dialect = connection.dialect
        dbapi_connection = connection.connection.dbapi_connection
        lost = dialect.is_disconnect(cast(DBAPIModule.Error, error), dbapi_connection, cursor)
        wrapped = exc.DBAPIError.instance(
            compiled.sql,
            params,
            error,
            dialect.loaded_dbapi.Error,
            dialect=dialect,
            connection_invalidated=lost,
        )
        if lost:
            connection.invalidate(error)
        return wrapped


_READERS: dict[ClauseElement, DriverStatement] = {}


def read_rows(
    connection: Connection, query: Select[Any], params: Mapping[str, Any]
) -> Sequence[tuple[Any, ...]]:
    """The rows of a batch read (a query built once, e.g. per dialect), values converted as
    SQLAlchemy converts them. On PostgreSQL straight on the driver's cursor (`DriverStatement`):
    SQLAlchemy's execution and rows cost a re-plan batch's reads about as much client CPU as
    the driver; elsewhere (SQLite's expanding ``IN``) through SQLAlchemy."""
    if connection.dialect.name != "postgresql":
        return connection.execute(query, params).all()  # type: ignore[return-value]
    found = _READERS.get(query)
    if found is None:
        types = [column.type for column in query.selected_columns]
        found = _READERS[query] = DriverStatement(query, types)
    return found.all(connection, params)
