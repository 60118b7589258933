"""The values bulk inserts hand SQLite are the text SQLAlchemy's `UTCDateTime` writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from sla_engine.ingest.bulk_rows import _sqlite_instants
from sla_engine.storage.types import UTCDateTime

INSTANTS = [
    datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
    datetime(2025, 3, 4, 9, 0, 0, 5, tzinfo=UTC),
    datetime(2025, 3, 4, 23, 30, 1, 250_000, tzinfo=timezone(timedelta(hours=-7))),
    datetime(2025, 3, 4, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1900, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("value", INSTANTS)
def test_sqlite_instants_are_the_text_sqlalchemy_writes(value: datetime) -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("at", UTCDateTime()))
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert().values(at=value))
        written = conn.exec_driver_sql("SELECT at FROM t").scalar_one()
    assert _sqlite_instants()(value) == written
