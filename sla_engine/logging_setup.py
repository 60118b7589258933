"""Logging of the long-running commands (`serve`, `worker`): one line per record on stderr.

Text by default (`TIME LEVEL LOGGER: message`), or one JSON object a line with
`SLA_ENGINE_LOG_FORMAT=json` (keys `time`, `level`, `logger`, `message`, `exc_info` and any
`extra` fields), formatted by python-json-logger. uvicorn's loggers go through the same handler.

`OutageLog` keeps a failing dependency (the database) from flooding the log: a component that
fails on every request or poll writes one line per `every` seconds, not a traceback per failure.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FORMAT_ENV = "SLA_ENGINE_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
LEVELS = ("critical", "error", "warning", "info", "debug")
OUTAGE_EVERY_S = 10.0
QUIET_LOGGERS = {
    "apscheduler.scheduler": logging.ERROR,
    "apscheduler.executors.default": logging.ERROR,
    "alembic": logging.WARNING,
}


class _IsoTime:
    """`asctime` as ISO 8601 in UTC with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at each record (as `logging.lastResort` does), so a
    replaced or captured stderr never leaves the handler writing to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


class TextFormatter(_IsoTime, logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JsonLineFormatter(_IsoTime, JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )


def log_format(env: dict[str, str] | None = None) -> str:
    """`text` or `json`, from $SLA_ENGINE_LOG_FORMAT; anything else is an error."""
    from sla_engine.errors import ConfigError

    value = (os.environ if env is None else env).get(LOG_FORMAT_ENV, "").strip().lower()
    if value and value not in LOG_FORMATS:
        raise ConfigError(
            f"{LOG_FORMAT_ENV} must be one of {', '.join(LOG_FORMATS)}",
            field=LOG_FORMAT_ENV,
            value=value,
        )
    return value or "text"


def configure_logging(level: str = "info", *, access_log: bool = False) -> None:
    """Send every logger's records to stderr in the configured format, at `level` and above.

    Idempotent (a worker process of `serve --workers` calls it again). uvicorn's access log
    (one line per request) stays off unless `access_log`.
    """
    handler = StderrHandler()
    handler.setFormatter(JsonLineFormatter() if log_format() == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    if not access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # APScheduler reports a skipped run (a pass outlasting the poll interval) as a warning:
    # that is the normal case under load, not worth a line per poll. Alembic's start-up
    # chatter ("Context impl SQLiteImpl.") says nothing an operator needs.
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))


def is_database_outage(exc: BaseException) -> bool:
    """A database that is away or refuses connections (not a bug in a statement)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


class OutageLog:
    """At most one log line per `every` seconds for one failing component.

    The first failure is logged at once (a WARNING naming the component and the error, no
    traceback); failures within the next `every` seconds are only counted, and the next line
    says how many there were. `recovered()` logs one INFO line when a failing component works
    again.
    """

    def __init__(
        self,
        component: str,
        logger: logging.Logger,
        *,
        every: float = OUTAGE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component = component
        self.logger = logger
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._last_line: float | None = None
        self._unlogged = 0
        self._failing = False

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        with self._lock:
            self._failing = True
            if self._last_line is not None and now - self._last_line < self.every:
                self._unlogged += 1
                return
            since, self._unlogged = self._unlogged, 0
            self._last_line = now
        cause = getattr(exc, "orig", None) or exc  # the driver's words, not SQLAlchemy's SQL
        error = " ".join(f"{type(cause).__name__}: {cause}".split())[:300]
        more = f" ({since} more failures since the last line)" if since else ""
        self.logger.warning("%s: database unavailable%s: %s", self.component, more, error)

    def recovered(self) -> None:
        if not self._failing:
            return
        with self._lock:
            if not self._failing:
                return
            self._failing = False
            self._last_line = None
            since, self._unlogged = self._unlogged, 0
        more = f" ({since} more failures since the last line)" if since else ""
        self.logger.info("%s: database available again%s", self.component, more)
