"""The import progress marker: how far each run of `sla-engine import` got.

A chunk's rows and the marker's advance commit in one transaction, so a rerun after an
interruption starts exactly after the last chunk that was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sla_engine.storage.models import Base


class ImportRun(Base):
    """One import of one file (named by its path and a fingerprint of its content)."""

    __tablename__ = "import_runs"
    __table_args__ = (Index(None, "fingerprint", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1000))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running, finished
    next_line: Mapped[int] = mapped_column(BigInteger)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    rejects_bytes: Mapped[int] = mapped_column(BigInteger)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
