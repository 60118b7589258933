"""Tables of stored calendars: one row per calendar, its versions, and re-plan jobs.

A version is never updated or deleted: tickets refer to calendars by name, and an answer about
the past must stay computable from the versions known then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sla_engine.storage.models import ID_LENGTH, NAME_LENGTH, Base

HASH_LENGTH = 64
ORIGINS = ("file", "http", "cli", "python")


class StoredCalendar(Base):
    """A calendar the database knows: the row concurrent writers of its versions lock.

    `file_hash` is the content hash of the calendar's file as last recorded (None for a
    calendar that only exists in the database)."""

    __tablename__ = "calendars"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    file_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CalendarVersion(Base):
    """One whole definition of a calendar, in force from `effective_from` (None: always).

    `known_from` is when the version became known: its `created_at`, or its `effective_from`
    for a retroactive one; None for version 1, which is the calendar's beginning."""

    __tablename__ = "calendar_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ForeignKey("calendars.name"))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime | None]
    known_from: Mapped[datetime | None]
    created_at: Mapped[datetime]
    retroactive: Mapped[bool] = mapped_column(Boolean)
    origin: Mapped[str] = mapped_column(String(10))
    content_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)


class CalendarReplan(Base):
    """Re-planning the stored rows of the tickets on a calendar after a new version.

    Walks the affected tickets in id order; `cursor` is the last ticket done, committed with
    the work, so a crash resumes after it. A lease keeps one process on a row at a time. A
    large job is split into slices (rows of the same calendar and version, each over the ids
    in (`after_ticket`, `through_ticket`], None: unbounded) that several processes work at
    once; the job is done when all its rows are finished."""

    __tablename__ = "calendar_replans"
    __table_args__ = (Index(None, "finished_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime | None]
    retroactive: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    cursor: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    tickets_done: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    after_ticket: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    through_ticket: Mapped[str | None] = mapped_column(String(ID_LENGTH))
