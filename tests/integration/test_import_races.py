"""A chunk that loses a race to another writer (a ticket created between the chunk's read and
its bulk insert) is rolled back and written again, on both databases: the line then counts
as the duplicate it is, and nothing is doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_engine.ingest import chunk_writer
from sla_engine.tickets import TicketCreate
from tests.support.ingest import NOW, import_file, services_at, snapshot, write_config, write_lines

LINES = [
    '{"kind":"ticket","id":"R-1","policy":"standard","created_at":"2025-11-20T08:00:00Z"}',
    '{"kind":"event","ticket_id":"R-1","event_id":"a","type":"agent_reply",'
    '"occurred_at":"2025-11-20T08:30:00Z"}',
    '{"kind":"ticket","id":"R-2","policy":"standard","created_at":"2025-11-20T08:00:00Z"}',
]


def test_a_chunk_that_lost_a_race_is_written_again(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, db_url)
    with services_at(config) as svc:
        svc.tickets.create_ticket(
            TicketCreate(id="R-1", policy="standard", created_at=NOW.replace(hour=8, minute=0))
        )
    real = chunk_writer._Chunk._read_stored
    calls = []

    def blind_once(self: chunk_writer._Chunk, lines: object) -> None:
        calls.append(1)
        real(self, lines)  # type: ignore[arg-type]
        if len(calls) == 1:  # as if R-1 had been created just after this read
            self.stored.pop("R-1", None)
            self.stored_events.pop("R-1", None)

    monkeypatch.setattr(chunk_writer._Chunk, "_read_stored", blind_once)
    outcome = import_file(config, write_lines(tmp_path / "race.jsonl", LINES))
    assert len(calls) == 2
    assert (outcome.counts.tickets, outcome.counts.duplicates, outcome.counts.events) == (1, 1, 1)
    assert outcome.counts.rejected == 0
    stored = snapshot(db_url)
    assert sorted(stored["tickets"]) == ["R-1", "R-2"]
    assert [e[0] for e in stored["events"]["R-1"]] == ["a"]
