"""`sla-engine import` as a user runs it: the summary line, rejected lines on stderr and in
FILE.rejects.jsonl, the exit codes, the progress bar on a terminal, and a run killed halfway
(SIGKILL, Ctrl-C) that a rerun completes into exactly what one clean run gives."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sla_engine.cli import run
from sla_engine.storage.db import make_engine
from tests.support.ingest import (
    differences,
    generated_lines,
    second_database,
    snapshot,
    write_lines,
)

CLI = str(Path(sys.executable).parent / "sla-engine")
BAD = [
    '{"kind":"ticket","id":"X-1","policy":"standard","created_at":"2023-05-01T09:00:00"}',
    '{"kind":"event","ticket_id":"nobody","event_id":"e","type":"solved","occurred_at":"2023-05-01T09:00:00Z"}',
    "this is not json",
]


def _lines_with_bad(tickets: int) -> list[str]:
    """Closed tickets of 2023 (their rows do not depend on when they are imported), with a
    bad line every so often."""
    lines = generated_lines(tickets, seed=3, start="2023-01-01")
    step = len(lines) // (len(BAD) + 1)
    for i, bad in enumerate(BAD, start=1):
        lines.insert(i * step, bad)
    return lines


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.OperationalError("SELECT 1", {}, Exception("another command is in progress")),
        sa.exc.ProgrammingError("SELECT 1", {}, Exception("can't change 'autocommit' now")),
    ],
)
def test_a_database_error_while_handling_ctrl_c_exits_as_interrupted(
    tmp_path: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: sa.exc.DBAPIError,
) -> None:
    """Ctrl-C inside a PostgreSQL call surfaces as whatever psycopg raised while SQLAlchemy
    cleaned up after it (seen: OperationalError on the rollback, ProgrammingError on resetting
    autocommit); both are the interruption, exit 130, not a crash or a database failure."""
    from sla_engine.ingest.importer import Importer

    def interrupted_run(*_: object, **__: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise error  # noqa: B904 - the implicit context is what the command reads

    monkeypatch.setattr(Importer, "run", interrupted_run)
    source = write_lines(tmp_path / "history.jsonl", _lines_with_bad(2))
    assert run(["import", str(source), "--database-url", sqlite_url]) == 130
    assert "run the same command again to resume history.jsonl" in capsys.readouterr().err


def test_summary_rejects_and_exit_codes(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "history.jsonl", _lines_with_bad(30))
    lines = source.read_text().splitlines()
    bad_numbers = [n for n, text in enumerate(lines, start=1) if text in BAD]

    assert run(["import", str(source), "--database-url", sqlite_url]) == 1
    out = capsys.readouterr()
    summary = out.out.strip()
    assert "\n" not in summary and summary.startswith("imported history.jsonl: ")
    assert f"{len(lines):,} lines" in summary and "3 rejected" in summary
    assert "history.rejects.jsonl" in summary
    for number in bad_numbers:
        assert f"line {number}: " in out.err
    rejects = [json.loads(t) for t in (tmp_path / "history.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == bad_numbers
    assert [r["text"] for r in rejects] == BAD
    assert "created_at" in rejects[0]["error"] and "UTC offset" in rejects[0]["error"]
    assert rejects[1]["error"] == "ticket_id: no ticket 'nobody'"
    assert rejects[2]["error"].startswith("body: malformed JSON")

    # again: everything is a duplicate, the same three lines are rejected
    assert run(["import", str(source), "--database-url", sqlite_url]) == 1
    again = capsys.readouterr().out
    assert f"{len(lines) - 3:,} duplicates; 3 rejected" in again

    clean = write_lines(tmp_path / "clean.jsonl", [t for t in lines if t not in BAD])
    assert run(["import", str(clean), "--database-url", sqlite_url]) == 0
    assert "0 rejected" in capsys.readouterr().out
    assert not (tmp_path / "clean.rejects.jsonl").exists()

    assert run(["import", str(tmp_path / "missing.jsonl"), "--database-url", sqlite_url]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def _progress(url: str) -> tuple[int, str] | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("select next_line, status from import_runs order by id desc limit 1")
            ).first()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None  # not migrated yet
    finally:
        engine.dispose()
    return None if row is None else (int(row[0]), str(row[1]))


def _start(source: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    return subprocess.Popen(
        [CLI, "import", str(source), "--database-url", url, "--chunk", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_import_resumes_to_one_clean_run(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest, how: signal.Signals
) -> None:
    lines = _lines_with_bad(500)
    source = write_lines(tmp_path / "history.jsonl", lines)
    proc = _start(source, db_url)
    deadline = time.monotonic() + 120
    while True:
        progress = _progress(db_url)
        if progress is not None and 0 < progress[0] < len(lines) // 2:
            break
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the import made no progress"
        time.sleep(0.02)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    if how == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert b"run the same command again to resume" in err
    stopped = _progress(db_url)
    assert stopped is not None and stopped[1] == "running" and stopped[0] < len(lines)

    resumed = _start(source, db_url)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 1, (out, err)
    summary = out.decode()
    assert "resumed after line" in summary and "3 rejected" in summary, err
    resumed_rejects = (tmp_path / "history.rejects.jsonl").read_text()

    other = second_database(db_url, tmp_path, request)
    os.rename(tmp_path / "history.rejects.jsonl", tmp_path / "first.rejects.jsonl")
    clean = _start(source, other)
    clean_out, _ = clean.communicate(timeout=300)
    assert clean.returncode == 1
    assert (tmp_path / "history.rejects.jsonl").read_text() == resumed_rejects
    assert _counts(clean_out.decode()) == _counts(summary)

    assert differences(snapshot(db_url), snapshot(other)) == []


def _counts(summary: str) -> str:
    """'N tickets, N events, ...; N duplicates; N rejected' of a summary line."""
    return summary.split("lines/s): ", 1)[1].split(" (see", 1)[0]


def test_progress_bar_on_a_terminal(tmp_path: Path, sqlite_url: str) -> None:
    source = write_lines(tmp_path / "history.jsonl", generated_lines(300, seed=5))
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_ENGINE_")}
    proc = subprocess.Popen(
        [CLI, "import", str(source), "--database-url", sqlite_url, "--chunk", "200"],
        stdout=child,
        stderr=child,
        env={**env, "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(child)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    assert proc.wait(timeout=60) == 0
    os.close(main)
    text = shown.decode("utf-8", "replace")
    assert "importing history.jsonl" in text
    assert "lines/s" in text and "lines" in text
    assert "imported history.jsonl:" in text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_lost_in_a_finalizer_still_stops_the_import(
    tmp_path: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python drops an exception raised inside a finalizer or weakref callback ("Exception
    ignored in ..."), Ctrl-C's KeyboardInterrupt too when it lands there (seen: in a
    WeakValueDictionary's callback); the import then stops after the chunk in progress."""
    from sla_engine.ingest import chunk_writer

    class Finalized:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)  # its handler runs inside this finalizer

    real = chunk_writer.Chunk.finish
    calls = []

    def interrupted_once(self: chunk_writer.Chunk) -> object:
        calls.append(1)
        if len(calls) == 2:
            Finalized()  # collected at once
        return real(self)

    monkeypatch.setattr(chunk_writer.Chunk, "finish", interrupted_once)
    source = write_lines(tmp_path / "history.jsonl", _lines_with_bad(40))
    code = run(["import", str(source), "--database-url", sqlite_url, "--chunk", "50"])
    assert code == 130
    assert "run the same command again to resume history.jsonl" in capsys.readouterr().err
    assert len(calls) == 2
    assert _progress(sqlite_url) == (100, "running")
