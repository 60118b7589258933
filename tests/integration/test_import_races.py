"""A chunk that loses a race to another writer (a ticket created between the chunk's read and
its bulk insert) is rolled back and written again, on both databases: the line then counts
as the duplicate it is, and nothing is doubled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sla_engine.ingest import chunk_writer, importer
from sla_engine.tickets import TicketCreate
from tests.support.ingest import (
    NOW,
    differences,
    generated_lines,
    import_file,
    second_database,
    services_at,
    snapshot,
    write_config,
    write_lines,
)

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
    real = chunk_writer.Chunk._read_stored
    calls = []

    def blind_once(self: chunk_writer.Chunk, lines: object) -> None:
        calls.append(1)
        real(self, lines)  # type: ignore[arg-type]
        if len(calls) == 1:  # as if R-1 had been created just after this read
            self.stored.pop("R-1", None)
            self.stored_events.pop("R-1", None)

    monkeypatch.setattr(chunk_writer.Chunk, "_read_stored", blind_once)
    outcome = import_file(config, write_lines(tmp_path / "race.jsonl", LINES))
    assert len(calls) == 2
    assert (outcome.counts.tickets, outcome.counts.duplicates, outcome.counts.events) == (1, 1, 1)
    assert outcome.counts.rejected == 0
    stored = snapshot(db_url)
    assert sorted(stored["tickets"]) == ["R-1", "R-2"]
    assert [e[0] for e in stored["events"]["R-1"]] == ["a"]


def test_a_chunk_whose_end_fails_transiently_is_written_again(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A chunk's end (on PostgreSQL written in the writer thread while the next chunk's lines
    are parsed) that fails with a transient error after its rows and rejects are written is
    rolled back, its rejects cut back, and the whole chunk decided and written again: the
    result is one clean run's."""
    lines = generated_lines(40, seed=11)
    lines.insert(90, "not json")  # a reject in the second chunk, the one that fails
    real = importer.Importer._advance
    calls = []

    def fails_once(self: importer.Importer, *args: Any) -> None:
        calls.append(1)
        real(self, *args)
        if len(calls) == 2:
            raise sa.exc.IntegrityError("UPDATE", {}, Exception("lost a race"))

    monkeypatch.setattr(importer.Importer, "_advance", fails_once)
    config = write_config(tmp_path, db_url)
    outcome = import_file(config, write_lines(tmp_path / "flaky.jsonl", lines), chunk=60)
    monkeypatch.setattr(importer.Importer, "_advance", real)

    other = second_database(db_url, tmp_path, request)
    clean_dir = tmp_path / "clean"
    config = write_config(clean_dir, other)
    clean = import_file(config, write_lines(clean_dir / "flaky.jsonl", lines), chunk=60)
    assert len(calls) == 8  # 7 chunks, the second twice
    assert outcome.counts == clean.counts and outcome.counts.rejected == 1
    rejects = (tmp_path / "flaky.rejects.jsonl").read_text()
    assert rejects == (clean_dir / "flaky.rejects.jsonl").read_text()
    assert differences(snapshot(db_url), snapshot(other)) == []
