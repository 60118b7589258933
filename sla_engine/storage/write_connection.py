"""A write transaction on a connection of its own, with the ORM session over it made to start
only when something uses it.

An event write's own statements run on the driver's cursor (`storage/driver_statements.py`);
what the ORM session added around them (its transaction's begin, commit and close, a
`session.connection()` look-up per statement) cost about 40 us of CPU per event on SQLite,
more than any one of the statements. Here the transaction is the connection's, and the
session handed to the write and its hooks is joined to it (`control_fully`): it stays idle
unless a hook uses it (credits, escalation timers, a checkpoint...), and then it commits the
same transaction itself, so that its `after_commit` listeners run after the real commit.
The write's statements ask `connection_of(session)` for the connection (elsewhere it is
`session.connection()`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

_CONNECTION = "sla_engine.write_connection"


@contextmanager
def write_on_connection(maker: sessionmaker[Session]) -> Iterator[Session]:
    """A session for one write transaction on its own connection of `maker`'s engine,
    committed when the block ends (rolled back if it raises). A sessionmaker bound to
    anything else than an engine gives a plain session and its transaction."""
    engine = maker.kw.get("bind")
    if not isinstance(engine, Engine):
        with maker() as session, session.begin():
            yield session
        return
    with engine.connect() as conn, conn.begin():
        session = maker(bind=conn, join_transaction_mode="control_fully")
        try:
            session.info[_CONNECTION] = conn
            yield session
            if session.in_transaction():
                session.commit()
        finally:
            if _used(session):
                session.close()


def _used(session: Session) -> bool:
    """Whether closing `session` has anything to do: a transaction, or objects to let go of.
    A session no hook touched is dropped as it is (closing it cost about 25 Python calls per
    event, for nothing)."""
    return (
        session.in_transaction()
        or len(session.identity_map) > 0
        or bool(session._new)  # (`session.new` and `.deleted` build a set each)
        or bool(session._deleted)
    )


def connection_of(session: Session) -> Connection:
    """The connection of `session`'s transaction: the one `write_on_connection` opened (the
    session not started for it), else `session.connection()`."""
    found = session.info.get(_CONNECTION)
    return found if found is not None else session.connection()
