"""`OutageLog`: one line per component per 10 s however often it fails; JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sla_engine.errors import ConfigError
from sla_engine.logging_setup import JsonLineFormatter, OutageLog, log_format


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_one_line_per_period(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = OutageLog("api", logging.getLogger("test.outage"), every=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for step in range(2500):  # 25 s of failures, 100 a second
            clock.now = step / 100
            outage.failed(ConnectionError("refused"))
        outage.recovered()
        outage.recovered()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "api: database unavailable: ConnectionError: refused",
        "api: database unavailable (999 more failures since the last line): "
        "ConnectionError: refused",
        "api: database unavailable (999 more failures since the last line): "
        "ConnectionError: refused",
        "api: database available again (499 more failures since the last line)",
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_json_lines_carry_time_level_logger_and_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    try:
        logger.warning("sent %s", "x", extra={"ticket_id": "T-1"})
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["level"] == "WARNING" and record["logger"] == "test.json"
    assert record["message"] == "sent x" and record["ticket_id"] == "T-1"
    assert record["time"].endswith("+00:00")


def test_the_log_format_is_text_or_json() -> None:
    assert log_format({}) == "text"
    assert log_format({"SLA_ENGINE_LOG_FORMAT": " JSON "}) == "json"
    with pytest.raises(ConfigError, match="SLA_ENGINE_LOG_FORMAT"):
        log_format({"SLA_ENGINE_LOG_FORMAT": "xml"})
