"""`sla-engine import FILE.jsonl`: stream a file of lines into the database, chunk by chunk.

Each chunk (a few thousand lines) is one transaction that also advances the run's progress
marker (`import_runs`), so an interrupted run (Ctrl-C, SIGKILL, a lost database) resumes on
the next start right after the last chunk written: nothing is doubled, nothing skipped.
Rejected lines go to `FILE.rejects.jsonl` before their chunk commits; a resumed run first
cuts that file back to the length the marker recorded.

On PostgreSQL a chunk's end (its bulk writes, rejects, marker and COMMIT) runs in a writer
thread while the next chunk's lines are read and parsed; that chunk's lines are decided only
after the commit, so it reads what the one before wrote, and its progress is reported then.

Memory stays flat: one or two chunks of lines, the run's grant counters and the accounts'
books.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.errors import InputError
from sla_engine.ingest.chunk_writer import Chunk, ChunkWriter, Parsed, parse_lines
from sla_engine.ingest.jsonl import GrantLine, LineError, SubscriptionLine, parse_line
from sla_engine.ingest.line_results import Counts, Reject
from sla_engine.ingest.models import ImportRun
from sla_engine.tickets import TicketService
from sla_engine.tickets.store import is_transient

CHUNK_LINES = 5_000
PIPELINED_DIALECTS = ("postgresql",)
"""Where a chunk's end and commit run in a thread while the next chunk's lines are read."""
GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds during a run (Python's are 700, 10, 10)."""
_FINGERPRINT_BYTES = 1 << 16
_ATTEMPTS = 3


def rejects_path(source: Path) -> Path:
    """`FILE.jsonl` -> `FILE.rejects.jsonl` beside it."""
    name = source.name.removesuffix(".jsonl")
    return source.with_name(f"{name}.rejects.jsonl")


def fingerprint(path: Path) -> str:
    """The file's size, modification time and first and last 64 KiB, hashed: a resumed run
    must read the same bytes as the interrupted one."""
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if stat.st_size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, stat.st_size - _FINGERPRINT_BYTES))
            digest.update(handle.read())
    return digest.hexdigest()


@dataclass
class Progress:
    """What the caller's progress display is told after each chunk."""

    done_bytes: int
    total_bytes: int
    counts: Counts
    run_counts: Counts
    new_rejects: list[Reject]


@dataclass
class Outcome:
    source: Path
    counts: Counts
    seconds: float
    resumed_at: int | None
    rejects_file: Path | None
    run_counts: Counts = field(default_factory=Counts)

    def summary(self) -> str:
        c = self.counts
        rate = self.run_counts.lines / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"imported {self.source.name}: {c.lines:,} lines in {self.seconds:.1f} s "
            f"({rate:,.0f} lines/s): {c.tickets:,} tickets, {c.events:,} events, "
            f"{c.grants:,} grants, {c.subscriptions:,} subscriptions; "
            f"{c.duplicates:,} duplicates; {c.rejected:,} rejected"
        )
        if self.rejects_file is not None and c.rejected:
            text += f" (see {self.rejects_file})"
        if self.resumed_at is not None:
            text += f"; resumed after line {self.resumed_at:,}"
        return text


class Importer:
    """Imports files through one ticket service (whose timer hook runs in history mode)."""

    def __init__(
        self,
        tickets: TicketService,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], datetime],
        chunk_lines: int = CHUNK_LINES,
    ) -> None:
        self.tickets = tickets
        self.sessions = sessions
        self.clock = clock
        self.chunk_lines = chunk_lines

    def run(self, source: Path, on_progress: Callable[[Progress], None] | None = None) -> Outcome:
        began = time.perf_counter()
        if not source.is_file():
            raise InputError(f"no such file: {source}", field="FILE", value=str(source))
        total = source.stat().st_size
        writer = ChunkWriter(self.tickets)
        run = self._start(source)
        resumed_at = run.next_line if run.next_line else None
        counts = Counts(**{k: int(v) for k, v in run.counts.items() if k in Counts().to_json()})
        run_counts = Counts()
        rejects = _RejectsFile(rejects_path(source), run.rejects_bytes, fresh=resumed_at is None)
        try:
            with _bulk_collector(), source.open("rb") as handle:
                if resumed_at is not None:
                    self._recount(handle, run.next_offset, writer)
                handle.seek(run.next_offset)
                offset = run.next_offset
                tail: _Tail | None = None

                def done(ended: _Tail) -> None:
                    chunk_counts, found = ended.result()
                    counts.add(chunk_counts)
                    run_counts.add(chunk_counts)
                    if on_progress is not None:
                        on_progress(Progress(ended.span[1], total, counts, run_counts, found))

                with self._writer_thread() as pool:
                    for lines, end_offset, end_line in _chunks(
                        handle, run.next_line, offset, self.chunk_lines
                    ):
                        parsed = parse_lines(lines)  # while the chunk before commits
                        if tail is not None:
                            done(tail)
                        span = (offset, end_offset)
                        job = _Job(writer, run.id, parsed, span, end_line, counts, rejects)
                        tail = self._start_chunk(job, pool)
                        offset = end_offset
                    if tail is not None:
                        done(tail)
            self._finish(run.id, counts)
        finally:
            rejects.close()
        kept = rejects.finish(counts.rejected)
        return Outcome(
            source, counts, time.perf_counter() - began, resumed_at, kept, run_counts=run_counts
        )

    # -- the marker -------------------------------------------------------------------------

    def _start(self, source: Path) -> ImportRun:
        key = fingerprint(source)
        name = str(source.resolve())
        now = self.clock()
        with self.sessions.begin() as session:
            run = session.scalar(
                sa.select(ImportRun)
                .where(
                    ImportRun.fingerprint == key,
                    ImportRun.source == name,
                    ImportRun.status == "running",
                )
                .order_by(ImportRun.id.desc())
                .limit(1)
            )
            if run is None:
                run = ImportRun(
                    source=name,
                    fingerprint=key,
                    status="running",
                    next_line=0,
                    next_offset=0,
                    rejects_bytes=0,
                    counts={},
                    started_at=now,
                    updated_at=now,
                    finished_at=None,
                )
                session.add(run)
                session.flush()
            session.expunge(run)
        return run

    def _finish(self, run_id: int, counts: Counts) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            session.execute(
                sa.update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(status="finished", finished_at=now, updated_at=now, counts=counts.to_json())
            )

    def _recount(self, handle: IO[bytes], upto: int, writer: ChunkWriter) -> None:
        """A resumed run counts the grant and subscription lines already imported, so that
        equal lines further on are judged as in one clean run."""
        handle.seek(0)
        read = 0
        for raw in handle:
            read += len(raw)
            if read > upto:
                break
            if b"grant" not in raw and b"subscription" not in raw:
                continue
            try:
                line = parse_line(raw)
            except LineError:
                continue
            if isinstance(line, GrantLine | SubscriptionLine):
                writer.note_seen(line)

    # -- one chunk ----------------------------------------------------------------------------

    @contextmanager
    def _writer_thread(self) -> Iterator[ThreadPoolExecutor | None]:
        """On PostgreSQL, a thread that writes the end of each chunk and commits it while the
        next chunk's lines are read and parsed (the server's work then overlaps the import's);
        elsewhere none."""
        bind = self.sessions.kw.get("bind")
        dialect = getattr(getattr(bind, "dialect", None), "name", None)
        if dialect not in PIPELINED_DIALECTS:
            yield None
            return
        with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as pool:
            yield pool

    def _start_chunk(self, job: _Job, pool: ThreadPoolExecutor | None) -> _Tail:
        """Decide the chunk's lines here; its end and commit in `pool` (or here). A first
        attempt that fails transiently is retried here, as a whole (`_write_chunk`)."""
        if pool is None or not job.writer.bulk:
            return _Tail(job.span, self._write_chunk(job, _ATTEMPTS))
        try:
            session = self._decide(job)
        except (IntegrityError, OperationalError) as exc:
            if not is_transient(exc):
                raise
            return _Tail(job.span, self._write_chunk(job, _ATTEMPTS - 1))
        future = pool.submit(self._end_chunk, job, session)
        return _Tail(job.span, None, future, lambda: self._write_chunk(job, _ATTEMPTS - 1))

    def _write_chunk(self, job: _Job, attempts: int) -> tuple[Counts, list[Reject]]:
        for attempt in range(1, attempts + 1):
            try:
                return self._end_chunk(job, self._decide(job))
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts or not is_transient(exc):
                    raise
        raise AssertionError("unreachable")

    def _decide(self, job: _Job) -> Session:
        """Open the chunk's transaction and decide its lines (`ChunkWriter.decide`)."""
        job.begin()
        session = self.sessions()
        try:
            session.begin()
            job.chunk = job.writer.decide(session, job.parsed, self.clock())
        except BaseException as exc:
            session.close()
            job.failed(exc)
            raise
        return session

    def _end_chunk(self, job: _Job, session: Session) -> tuple[Counts, list[Reject]]:
        """Write the rest of the chunk, its rejects and the marker, and commit."""
        assert job.chunk is not None
        try:
            counts, found = job.chunk.finish()
            job.rejects.write(found)
            total = Counts(**job.before.to_json())
            total.add(counts)
            self._advance(session, job.run_id, job.span, job.end_line, job.rejects.size, total)
            session.commit()
        except BaseException as exc:
            session.close()
            job.failed(exc)
            raise
        session.close()
        return counts, found

    def _advance(
        self,
        session: Session,
        run_id: int,
        span: tuple[int, int],
        last_line: int,
        rejects_bytes: int,
        counts: Counts,
    ) -> None:
        moved = session.execute(
            sa.update(ImportRun)
            .where(ImportRun.id == run_id, ImportRun.next_offset == span[0])
            .values(
                next_offset=span[1],
                next_line=last_line,
                rejects_bytes=rejects_bytes,
                counts=counts.to_json(),
                updated_at=self.clock(),
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise InputError(
                "another import of this file is running against this database; "
                "wait for it to end (a rerun then resumes where it stopped)",
                field="FILE",
            )


class _Job:
    """One chunk of lines to write, and what a retry of it needs."""

    def __init__(
        self,
        writer: ChunkWriter,
        run_id: int,
        parsed: list[Parsed],
        span: tuple[int, int],
        end_line: int,
        before: Counts,
        rejects: _RejectsFile,
    ) -> None:
        self.writer = writer
        self.run_id = run_id
        self.parsed = parsed
        self.span = span
        self.end_line = end_line
        self.before = Counts(**before.to_json())
        self.rejects = rejects
        self.seen = writer.requests_seen.copy()
        self.mark = rejects.size
        self.chunk: Chunk | None = None

    def begin(self) -> None:
        self.mark = self.rejects.size
        self.chunk = None

    def failed(self, exc: BaseException) -> None:
        """Undo what an attempt left outside the database."""
        self.rejects.truncate(self.mark)
        if isinstance(exc, IntegrityError | OperationalError):
            self.writer.forget()
            self.writer.requests_seen = self.seen.copy()


class _Tail:
    """A chunk's end: done, or running in the writer thread (a transient failure there is
    retried in the caller's thread by `retry`)."""

    def __init__(
        self,
        span: tuple[int, int],
        done: tuple[Counts, list[Reject]] | None,
        future: Future[tuple[Counts, list[Reject]]] | None = None,
        retry: Callable[[], tuple[Counts, list[Reject]]] | None = None,
    ) -> None:
        self.span = span
        self.done = done
        self.future = future
        self.retry = retry

    def result(self) -> tuple[Counts, list[Reject]]:
        if self.done is not None:
            return self.done
        assert self.future is not None and self.retry is not None
        try:
            self.done = self.future.result()
        except (IntegrityError, OperationalError) as exc:
            if not is_transient(exc):
                raise
            self.done = self.retry()
        return self.done


@contextmanager
def _bulk_collector() -> Iterator[None]:
    """The cyclic collector tuned for a run: what exists before it is frozen (never scanned
    again) and collections come less often. A chunk makes hundreds of thousands of
    short-lived objects, nearly all freed by reference counting; with Python's thresholds
    the collector took an eighth of a run's CPU (measured: 1,484 young, 135 middle and 12
    full collections for 100,000 events). The caller's settings come back after."""
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0  # a process that froze its own start-up keeps it
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()


def _chunks(
    handle: IO[bytes], line_number: int, offset: int, size: int
) -> Iterator[tuple[list[tuple[int, str]], int, int]]:
    """Chunks of (line number, text), each with the byte offset and the line number it ends
    at; blank lines are skipped (but numbered)."""
    lines: list[tuple[int, str]] = []
    for raw in handle:
        line_number += 1
        offset += len(raw)
        if raw.strip():
            lines.append((line_number, raw.decode("utf-8", errors="replace")))
        if len(lines) >= size:
            yield lines, offset, line_number
            lines = []
    if lines:
        yield lines, offset, line_number


class _RejectsFile:
    """`FILE.rejects.jsonl`, opened on the first reject and cut back on a retried chunk."""

    def __init__(self, path: Path, keep_bytes: int, *, fresh: bool) -> None:
        self.path = path
        self.size = keep_bytes
        self.handle: IO[bytes] | None = None
        if fresh:
            self.size = 0
            if path.exists():
                path.unlink()
        elif path.exists() and path.stat().st_size > keep_bytes:
            os.truncate(path, keep_bytes)

    def write(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        if self.handle is None:
            self.handle = self.path.open("ab")
        data = b"".join(
            json.dumps(r.to_json(), ensure_ascii=False).encode() + b"\n" for r in rejects
        )
        self.handle.write(data)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.size += len(data)

    def truncate(self, size: int) -> None:
        if self.handle is not None:
            self.handle.truncate(size)
            self.handle.seek(size)
        elif self.path.exists():
            os.truncate(self.path, size)
        self.size = size

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def finish(self, rejected: int) -> Path | None:
        if rejected:
            return self.path
        if self.path.exists() and self.path.stat().st_size == 0:
            self.path.unlink()
        return None


def describe(outcome: Outcome) -> dict[str, Any]:
    return {
        "file": str(outcome.source),
        "seconds": round(outcome.seconds, 3),
        "resumed_after_line": outcome.resumed_at,
        "rejects_file": None if outcome.rejects_file is None else str(outcome.rejects_file),
        **outcome.counts.to_json(),
    }
