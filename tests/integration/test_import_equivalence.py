"""The bulk import leaves exactly the rows that the same lines sent one by one through the
ticket and credit services leave: tickets (with their saved clocks and queue keys), events,
metric rows, checkpoints, escalation timers, outbox rows and ledger entries, and it rejects
the same lines with the same errors. On SQLite and PostgreSQL; small chunks, so that tickets
span chunks and take every path (new tickets in bulk, stored tickets refreshed once, credit
events as single calls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_engine.ingest.importer import Importer, rejects_path
from tests.support.ingest import (
    differences,
    import_one_by_one,
    sample_lines,
    second_database,
    services_at,
    snapshot,
    write_config,
    write_lines,
)


def _import(config: Path, source: Path, chunk: int) -> tuple[int, list[tuple[int, str]]]:
    with services_at(config) as svc:
        importer = Importer(svc.tickets, svc.sessionmaker, clock=svc.clock, chunk_lines=chunk)
        outcome = importer.run(source)
    rejects = []
    if outcome.rejects_file is not None:
        import json

        for text in outcome.rejects_file.read_text().splitlines():
            item = json.loads(text)
            rejects.append((item["line"], item["error"]))
    return outcome.counts.rejected, rejects


@pytest.mark.parametrize("chunk", [37, 100_000])
def test_import_equals_single_calls(db_url: str, tmp_path: Path, chunk: int, request) -> None:
    other_url = second_database(db_url, tmp_path, request)
    lines = sample_lines(60)
    source = write_lines(tmp_path / "sample.jsonl", lines)
    rejected, rejects = _import(write_config(tmp_path / "a", db_url), source, chunk)
    with services_at(write_config(tmp_path / "b", other_url)) as svc:
        expected_rejects = import_one_by_one(svc, lines)
    assert rejects == expected_rejects
    assert rejected == len(expected_rejects) >= 8
    bulk, single = snapshot(db_url), snapshot(other_url)
    assert differences(bulk, single) == []
    assert len(bulk["tickets"]) > 60 and sum(map(len, bulk["events"].values())) > 300
    assert {t[1][1] for t in bulk["timers"] if t[1][0] == "status"} <= {"pending", "skipped"}
    assert any(dict(t)["status"] == "skipped" for t in bulk["timers"])
    assert any(dict(t)["status"] == "pending" for t in bulk["timers"])
    assert [c[0] for c in bulk["checkpoints"]].count("E-7") == 2  # 150 events: 2 checkpoints
    assert bulk["tickets"]["E-11"]["initial_calendar"] == "example-berlin"
    assert bulk["tickets"]["E-11"]["calendar"] == "example-sydney"
    assert "E-12" not in bulk["tickets"] and "E-10" in bulk["tickets"]
    assert rejects_path(source).exists()
