"""`write_on_connection`: one transaction whether or not the ORM session is used, committed
at the end (after-commit listeners after the real commit), rolled back whole on an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.storage.models import Ticket
from sla_engine.storage.write_connection import connection_of, write_on_connection

T0 = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
TICKETS = sa.table("tickets", sa.column("id"), sa.column("status"))


def _ticket(ticket_id: str) -> Ticket:
    return Ticket(
        id=ticket_id,
        policy="standard",
        current_policy="standard",
        created_at=T0,
        status="open",
        received_at=T0,
    )


def _insert(session: Session, ticket_id: str) -> None:
    values = {
        "id": ticket_id,
        "policy": "standard",
        "current_policy": "standard",
        "created_at": T0,
        "status": "open",
        "received_at": T0,
    }
    connection_of(session).execute(sa.insert(Ticket), values)


def _stored(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as other:
        return sorted(other.scalars(sa.select(Ticket.id)))


def test_statements_alone_leave_the_session_idle_and_are_committed(
    sessions: sessionmaker[Session],
) -> None:
    with write_on_connection(sessions) as session:
        _insert(session, "T-1")
        assert not session.in_transaction()
        assert connection_of(session).in_transaction()
    assert _stored(sessions) == ["T-1"]


def test_a_session_used_commits_the_same_transaction_then_its_listeners_run(
    sessions: sessionmaker[Session],
) -> None:
    seen_then: list[list[str]] = []
    with write_on_connection(sessions) as session:
        _insert(session, "T-1")
        session.add(_ticket("T-2"))
        session.flush()
        assert session.connection() is connection_of(session)
        sa.event.listen(
            session, "after_commit", lambda _s: seen_then.append(_stored(sessions)), once=True
        )
    assert seen_then == [["T-1", "T-2"]]
    assert _stored(sessions) == ["T-1", "T-2"]


@pytest.mark.parametrize("use_session", [False, True])
def test_an_error_rolls_everything_back(sessions: sessionmaker[Session], use_session: bool) -> None:
    with pytest.raises(RuntimeError), write_on_connection(sessions) as session:
        _insert(session, "T-1")
        if use_session:
            session.add(_ticket("T-2"))
            session.flush()
        raise RuntimeError("refused")
    assert _stored(sessions) == []
    with write_on_connection(sessions) as session:  # the connection went back to the pool clean
        _insert(session, "T-3")
    assert _stored(sessions) == ["T-3"]
