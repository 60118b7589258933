"""`storage/upsert.py` on both databases: a duplicate key is left as it is, without an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.escalation.models import DestinationState
from sla_engine.storage.upsert import insert_ignoring, insert_ignoring_duplicates

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def rows(session: Session) -> list[tuple[str, datetime, str]]:
    d = DestinationState
    return [tuple(r) for r in session.execute(sa.select(d.name, d.disabled_at, d.reason))]


def test_the_first_insert_of_a_key_wins(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        insert_ignoring_duplicates(
            session, DestinationState, {"name": "pd", "disabled_at": T0, "reason": "first"}
        )
        insert_ignoring_duplicates(
            session,
            DestinationState,
            {"name": "pd", "disabled_at": T0 + timedelta(1), "reason": "second"},
        )
    with sessions() as session:
        assert rows(session) == [("pd", T0, "first")]


def test_many_rows_in_one_statement_skip_the_existing_ones(
    sessions: sessionmaker[Session],
) -> None:
    def row(name: str, reason: str) -> dict[str, object]:
        return {"name": name, "disabled_at": T0, "reason": reason}

    with sessions.begin() as session:
        insert_ignoring_duplicates(session, DestinationState, [row("a", "old")])
        insert_ignoring_duplicates(
            session, DestinationState, [row("a", "new"), row("b", "new"), row("b", "again")]
        )
        insert_ignoring_duplicates(session, DestinationState, [])
    with sessions() as session:
        assert sorted(rows(session)) == [("a", T0, "old"), ("b", T0, "new")]


def test_the_statement_can_report_what_went_in(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        dialect = session.get_bind().dialect.name
        statement = insert_ignoring(DestinationState, dialect, index_elements=["name"])
        statement = statement.returning(DestinationState.name)
        values = {"name": "x", "disabled_at": T0, "reason": "r"}
        assert session.execute(statement, values).scalars().all() == ["x"]
        assert session.execute(statement, values).scalars().all() == []
