"""Prometheus counters shared by the processes of `sla-engine serve --workers N`.

Each process counts in memory by default, so behind one port a scrape would read whichever
process answered. With `PROMETHEUS_MULTIPROC_DIR` set before the processes start,
prometheus_client keeps every counter and histogram in per-process files there and
`/metrics` sums them (multiprocess mode). `serve --workers` gives each run a directory of its
own (the user's `PROMETHEUS_MULTIPROC_DIR` if set, else a temporary one), emptied at start so
that a previous run's counts do not leak in, and a temporary one is removed at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory in force in this process, or None."""
    value = os.environ.get(MULTIPROC_ENV)
    return value if value and os.path.isdir(value) else None


@contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """A fresh multiprocess directory in `os.environ` for the processes started inside."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="sla-engine-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
