"""Command group: `import FILE.jsonl` and `export` (the format is in docs/INGEST.md).

`import` applies the migrations, then streams the file straight into the database. On a
terminal it shows a progress bar (lines, rate, time left); otherwise it prints one summary
line. Rejected lines are listed on stderr with their numbers and written to
`FILE.rejects.jsonl`; the exit code is 1 when any line was rejected. Interrupted, a rerun
resumes after the last chunk written.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from sla_engine.cli.app import app
from sla_engine.cli.options import parse_instant
from sla_engine.cli.service_cmds import ConfigOption, DatabaseOption, _config
from sla_engine.errors import InputError

REJECTS_SHOWN = 20
INTERRUPTED_EXIT_CODE = 130


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="a JSONL file: ticket, event, grant lines ...")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    chunk: Annotated[
        int, typer.Option("--chunk", help="lines per transaction", min=1, max=1_000_000)
    ] = 5_000,
) -> None:
    """Import tickets, events, grants and subscriptions from FILE.jsonl into the database.

    Repeated ticket and event ids are counted as duplicates; bad lines go to
    FILE.rejects.jsonl (exit code 1). Escalations already due are recorded as skipped.
    Rerun after an interruption, it resumes where it stopped.
    """
    from sqlalchemy.exc import DBAPIError, OperationalError

    from sla_engine.composition import build_services
    from sla_engine.ingest.importer import Importer

    if not file.is_file():
        raise InputError(f"no such file: {file}", field="FILE", value=str(file))
    cfg = _config(config, database_url)
    services = build_services(cfg, history=True)
    shown = _RejectPrinter()
    try:
        importer = Importer(
            services.tickets, services.sessionmaker, clock=services.clock, chunk_lines=chunk
        )
        with _ProgressDisplay(file, shown) as show, _ctrl_c_noted() as noted:
            on_progress = _stopping_after(show, noted)
            try:
                outcome = importer.run(file, on_progress)
            except KeyboardInterrupt:
                _interrupted(file)
            except DBAPIError as exc:
                if _caused_by_interrupt(exc):
                    # Ctrl-C inside a PostgreSQL call: the clean-up that follows then fails
                    # ("another command is already in progress" on the rollback, "can't
                    # change 'autocommit' now" on the pool's reset); it is still Ctrl-C.
                    _interrupted(file)
                if not isinstance(exc, OperationalError):
                    raise
                reason = " ".join(str(exc.orig or exc).split())[:300]
                typer.echo(
                    f"error: the database failed ({reason}); the chunk in progress was not "
                    f"written: run the same command again to resume {file.name}",
                    err=True,
                )
                raise typer.Exit(2) from None
    finally:
        try:
            services.close()
        except DBAPIError as exc:  # closing the pool after a Ctrl-C inside a call
            if not _caused_by_interrupt(exc):
                raise
    shown.close()
    typer.echo(outcome.summary())
    if outcome.counts.rejected:
        raise typer.Exit(1)


@contextmanager
def _ctrl_c_noted() -> Iterator[list[int]]:
    """Ctrl-C noted (the list gets an item) besides its KeyboardInterrupt: Python drops an
    exception raised inside a finalizer or a weakref callback ("Exception ignored in ..."),
    and Ctrl-C's lands there now and then; the import then stops after the chunk in
    progress. Left alone where SIGINT is ignored, or off the main thread."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield seen
        return

    def note(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _stopping_after(show: Callable[[Any], None], noted: list[int]) -> Callable[[Any], None]:
    """The progress callback: shows the chunk, then stops the run if a Ctrl-C was noted
    whose KeyboardInterrupt Python dropped (`_ctrl_c_noted`)."""

    def on_progress(progress: Any) -> None:
        show(progress)
        if noted:
            raise KeyboardInterrupt

    return on_progress


def _interrupted(file: Path) -> NoReturn:
    typer.echo(f"error: interrupted; run the same command again to resume {file.name}", err=True)
    raise typer.Exit(INTERRUPTED_EXIT_CODE) from None


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__ or seen.__cause__
    return False


@app.command("export")
def export(
    start: Annotated[
        str | None, typer.Option("--from", help="tickets created at or after (ISO 8601)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="tickets created before (ISO 8601)")
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write tickets created in [--from, --to), their events, and the grants and
    subscriptions of their accounts to stdout, in the format `import` reads."""
    from sla_engine.ingest.exporter import export_lines
    from sla_engine.storage.db import make_engine, make_sessionmaker, upgrade

    cfg = _config(config, database_url)
    lower = None if start is None else parse_instant(start, "--from")
    upper = None if end is None else parse_instant(end, "--to")
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    out = sys.stdout
    try:
        for line in export_lines(make_sessionmaker(engine), lower, upper):
            out.write(line)
            out.write("\n")
        out.flush()
    except BrokenPipeError:  # `sla-engine export | head`
        sys.stderr.close()
    finally:
        engine.dispose()


class _RejectPrinter:
    """Names the first rejected lines on stderr, then counts the rest."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, rejects: list[Any]) -> None:
        for reject in rejects:
            self.count += 1
            if self.count <= REJECTS_SHOWN:
                typer.echo(f"line {reject.line}: {reject.error}", err=True)

    def close(self) -> None:
        if self.count > REJECTS_SHOWN:
            typer.echo(f"... and {self.count - REJECTS_SHOWN:,} more rejected lines", err=True)


class _ProgressDisplay:
    """A rich progress bar (lines, rate, time left) when stdout is a terminal; nothing
    otherwise (the summary line follows)."""

    def __init__(self, file: Path, rejects: _RejectPrinter) -> None:
        self.file = file
        self.rejects = rejects
        self.progress: Any = None

    def __enter__(self) -> Any:
        if not sys.stdout.isatty():
            return self._quiet
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[lines]:>12,} lines"),
            TextColumn("{task.fields[rate]:>9,.0f} lines/s"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            f"importing {self.file.name}", total=None, lines=0, rate=0.0
        )
        self.began = time.perf_counter()
        return self._update

    def _quiet(self, progress: Any) -> None:
        self.rejects(progress.new_rejects)

    def _update(self, progress: Any) -> None:
        self.rejects(progress.new_rejects)
        seconds = max(time.perf_counter() - self.began, 1e-9)
        self.progress.update(
            self.task,
            total=progress.total_bytes,
            completed=progress.done_bytes,
            lines=progress.counts.lines,
            rate=progress.run_counts.lines / seconds,
        )

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
