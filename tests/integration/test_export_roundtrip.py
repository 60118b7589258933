"""`sla-engine export` then an import into an empty database with the same config: every
ticket has the same SLA state (at instants before, at and after the source was written), the
same row, events and metric rows, and every account the same ledger (so the same balances at
any instant). On SQLite and PostgreSQL. The import runs with the source's clock, so that the
rows written "now" compare too (the `import` command itself is tested in test_import_cli)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sla_engine.cli import run
from tests.support.ingest import (
    NOW,
    import_file,
    import_one_by_one,
    sample_lines,
    second_database,
    services_at,
    snapshot,
    write_config,
    write_lines,
)

INSTANTS = [NOW - timedelta(days=d) for d in (60, 20, 3, 1)] + [NOW, NOW + timedelta(days=2)]


def _state(config: Path) -> dict[str, Any]:
    """Each ticket's SLA state and each account's balances at several instants."""
    with services_at(config) as svc:
        snap = snapshot(svc.config.database_url)
        sla = {
            (tid, at.isoformat()): svc.tickets.sla(tid, at).to_json(details=True)
            for tid in snap["tickets"]
            for at in INSTANTS
        }
        credits = {}
        accounts = {t["account"] for t in snap["tickets"].values()} - {None}
        for account in sorted(accounts):
            for at in INSTANTS:
                balance = svc.credits.credits(account, at)
                for lot in balance["lots"]:
                    lot.pop("lot_id", None)
                credits[(account, at.isoformat())] = balance
    return {
        "sla": sla,
        "credits": credits,
        "tickets": snap["tickets"],
        "events": snap["events"],
        "metrics": snap["metrics"],
        "ledger": {a: entries for a, entries in snap["ledger"].items() if a in accounts},
    }


def _export(config: Path, capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    capsys.readouterr()
    assert run(["export", "--config", str(config), *options]) == 0
    return capsys.readouterr().out.splitlines()


def test_export_then_import_gives_the_same_tickets_and_credits(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    source_config = write_config(tmp_path / "a", db_url)
    with services_at(source_config, history=False) as svc:
        import_one_by_one(svc, sample_lines(40))
    lines = _export(source_config, capsys)
    assert all(
        json.loads(line)["kind"] in ("ticket", "event", "grant", "subscription") for line in lines
    )
    exported = write_lines(tmp_path / "export.jsonl", lines)

    target_config = write_config(tmp_path / "b", second_database(db_url, tmp_path, request))
    outcome = import_file(target_config, exported)
    assert outcome.counts.rejected == 0

    before, after = _state(source_config), _state(target_config)
    for part in before:
        assert before[part] == after[part], part

    # exporting the copy gives the same lines; importing them again changes nothing
    assert sorted(_export(target_config, capsys)) == sorted(lines)
    again = import_file(target_config, exported)
    assert again.counts.duplicates == len(lines)
    assert _state(target_config) == after


def test_export_window_takes_tickets_created_in_it_and_their_accounts(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sqlite_url)
    lines = [
        '{"kind":"grant","account":"a","type":"license_purchase","occurred_at":"2025-01-01T00:00:00Z"}',
        '{"kind":"grant","account":"b","type":"license_purchase","occurred_at":"2025-01-01T00:00:00Z"}',
        '{"kind":"ticket","id":"T-1","policy":"standard","created_at":"2025-02-01T10:00:00Z","account":"a"}',
        '{"kind":"ticket","id":"T-2","policy":"standard","created_at":"2025-03-01T10:00:00Z","account":"b"}',
        '{"kind":"event","ticket_id":"T-2","event_id":"r","type":"agent_reply","occurred_at":"2025-03-01T11:00:00Z"}',
        '{"kind":"ticket","id":"T-3","policy":"emergency","created_at":"2025-04-01T10:00:00Z"}',
    ]
    with services_at(config, history=False) as svc:
        assert import_one_by_one(svc, lines) == []
    window = _export(
        config, capsys, "--from", "2025-03-01T00:00:00Z", "--to", "2025-04-01T10:00:00Z"
    )
    assert [json.loads(line).get("id") or json.loads(line).get("event_id") for line in window] == [
        None,
        "T-2",
        "r",
    ]
    assert json.loads(window[0])["account"] == "b"
    assert run(["export", "--config", str(config), "--from", "yesterday"]) == 2
    assert "--from" in capsys.readouterr().err
