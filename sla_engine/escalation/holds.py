"""Notifications held by `during = "CAL"` follow a new version of CAL.

Firing writes a held delivery with `not_before = hold_until(now, CAL)`: CAL's next opening as
CAL stood then. When CAL gets a new version, every delivery still held for it (queued, never
attempted, `not_before` ahead) is given `hold_until(now, CAL with the new version)` inside the
transaction that stores the version, so the hold and the version commit together. A delivery
waiting for a retry (attempts > 0) keeps its backoff. Which calendar holds a delivery is read
from its timer row's `targets` (the first target to that destination, as firing used).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sla_engine.core.business_calendar import BusinessCalendar
from sla_engine.errors import CalendarError
from sla_engine.escalation.models import EscalationDelivery, EscalationTimer
from sla_engine.escalation.planning import hold_until

log = logging.getLogger(__name__)


def during_of(targets: str, destination: str) -> str | None:
    """The `during` calendar of the first target to `destination` in a timer's targets JSON
    (firing writes one delivery per destination; a later duplicate is ignored)."""
    for item in json.loads(targets):
        if item.get("to") == destination:
            during = item.get("during")
            return None if during is None else str(during)
    return None


def held_for(session: Session, calendar: str, now: datetime) -> list[str]:
    """Ids of the deliveries held for `calendar` at `now`: queued, never attempted, not due
    before a later instant, and fired from a target whose `during` is `calendar`."""
    d, t = EscalationDelivery, EscalationTimer
    rows = session.execute(
        sa.select(d.id, d.destination, t.targets)
        .join(t, t.id == d.timer_id)
        .where(
            d.status == "queued",
            d.attempts == 0,
            d.not_before > now,
            t.targets.contains(json.dumps(calendar), autoescape=True),
        )
    )
    return [
        id_ for id_, destination, targets in rows if during_of(targets, destination) == calendar
    ]


def move_held(
    session: Session,
    calendar: str,
    versions: Callable[[], BusinessCalendar],
    now: datetime,
) -> int:
    """Give every delivery held for `calendar` the hold of its new version; returns how many
    moved. `versions()` builds the calendar with every version, the new one included (called
    only when something is held). A calendar with no opening ahead moves nothing (logged). The
    update is fenced on `queued` and `attempts = 0`: a row a worker claimed meanwhile is left
    to it."""
    ids = held_for(session, calendar, now)
    if not ids:
        return 0
    try:
        until = hold_until(now, versions())
    except CalendarError as exc:
        # a version stored anyway (a calendar file is not checked for open time): keep holds
        log.warning(
            "calendar %s: %d held escalation deliveries keep their wait: %s",
            calendar,
            len(ids),
            exc.message,
        )
        return 0
    d = EscalationDelivery
    result = cast(
        "sa.CursorResult[Any]",
        session.execute(
            sa.update(d)
            .where(d.id.in_(ids), d.status == "queued", d.attempts == 0, d.not_before != until)
            .values(not_before=until, updated_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    moved = int(result.rowcount)
    log.info(
        "calendar %s: %d held escalation deliveries of %d now wait until %s (its next opening)",
        calendar,
        moved,
        len(ids),
        until.isoformat(),
    )
    return moved
