"""An import run tunes the cyclic collector for its chunks (start-up frozen, rarer
collections) and gives the caller's settings back, also when the run fails."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from sla_engine.ingest.importer import GC_THRESHOLDS, Importer
from tests.support.ingest import generated_lines, services_at, write_config, write_lines


def test_the_collector_is_tuned_during_a_run_and_restored(db_url: str, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "t.jsonl", generated_lines(5))
    seen: list[tuple[tuple[int, int, int], int]] = []
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with services_at(write_config(tmp_path, db_url)) as svc:
        importer = Importer(svc.tickets, svc.sessionmaker, clock=svc.clock, chunk_lines=10)
        importer.run(source, lambda _: seen.append((gc.get_threshold(), gc.get_freeze_count())))
    assert len(seen) > 1
    assert all(thresholds == GC_THRESHOLDS and frozen > 0 for thresholds, frozen in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_failed_run_restores_the_collector(db_url: str, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "t.jsonl", generated_lines(5))
    before = gc.get_threshold()

    def fail(_: object) -> None:
        raise RuntimeError("stop")

    with services_at(write_config(tmp_path, db_url)) as svc:
        importer = Importer(svc.tickets, svc.sessionmaker, clock=svc.clock, chunk_lines=10)
        with pytest.raises(RuntimeError):
            importer.run(source, fail)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_process_that_froze_its_start_up_keeps_it_frozen(db_url: str, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "t.jsonl", generated_lines(2))
    gc.freeze()
    try:
        with services_at(write_config(tmp_path, db_url)) as svc:
            Importer(svc.tickets, svc.sessionmaker, clock=svc.clock).run(source)
        assert gc.get_freeze_count() > 0  # not unfrozen by the run
    finally:
        gc.unfreeze()
