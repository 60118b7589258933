"""Keeping a ticket's saved clock current, inside the caller's transaction.

Three ways to bring it up to date after an event is stored; each ends with the same replay the
whole log gives (the property test in `tests/unit/test_saved_clock.py` and
`tests/integration/test_ticket_clock.py` holds them to it):

- **in order** (the event is dated at or after the ticket's last one): the event is applied
  to the saved replay. Nothing of the log is read, so the cost does not grow with it;
- **late** (dated before the last one): the replay resumes from the last checkpoint before the
  event (checkpoints are saved every ``CHECKPOINT_EVERY`` events) and applies the events after
  it, which are read with one indexed query. Checkpoints after the event are replaced;
- **whole** (no saved clock yet, another config, or a calendar with a new version since it
  was saved): the whole log is replayed and the checkpoints rebuilt.

The current state is the saved replay evaluated at the instant, unless some event is dated
after that instant (a clock ahead of ours): then the replay from the last checkpoint before
it, without the later events, answers (nothing is written).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from operator import attrgetter
from typing import Protocol

from sqlalchemy.orm import Session

from sla_engine.core.calendar_source import CalendarSource
from sla_engine.core.clock import TicketState, replay_order
from sla_engine.core.policies import Policy
from sla_engine.core.ticket_replay import policies_fingerprint
from sla_engine.json_types import JsonObject
from sla_engine.tickets import checkpoints, saved_clock, store
from sla_engine.tickets.checkpoints import Checkpoint, Position
from sla_engine.tickets.saved_clock import SavedClock
from sla_engine.tickets.store import StoredEvent, clock_event

CHECKPOINT_EVERY = 64
"""Events between two checkpoints: a late event replays at most this many plus those dated
after it; each checkpoint is one row of about a kilobyte."""
_REPLAY_KEY = attrgetter("occurred_at", "seq")


class ClockTicket(Protocol):
    """The ticket fields the clock reads."""

    @property
    def id(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def initial_calendar(self) -> str | None: ...
    @property
    def clock_state(self) -> JsonObject | None: ...


class TicketClocks:
    """Saved clocks of tickets under one set of policies and one calendar source."""

    def __init__(
        self,
        policies: Mapping[str, Policy],
        source: CalendarSource,
        *,
        every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.policies = policies
        self.source = source
        self.every = every
        self.fingerprint = policies_fingerprint(policies)

    # -- reading ----------------------------------------------------------------------------

    def resume(
        self, ticket: ClockTicket, saved: Mapping[str, object] | None = None
    ) -> SavedClock | None:
        """The ticket's saved clock (or ``saved``, a checkpoint's) if it can be trusted now."""
        return saved_clock.resume(
            ticket.clock_state if saved is None else saved,
            fingerprint=self.fingerprint,
            source=self.source,
            created_at=ticket.created_at,
            policies=self.policies,
        )

    def begin(self, ticket: ClockTicket) -> SavedClock:
        return saved_clock.begin(
            source=self.source,
            initial_policy=ticket.policy,
            created_at=ticket.created_at,
            policies=self.policies,
            ticket_calendar=ticket.initial_calendar,
        )

    def state(
        self, session: Session, ticket: ClockTicket, clock: SavedClock, at: datetime
    ) -> TicketState:
        """The ticket's state at ``at`` (current calendars) from its up-to-date clock."""
        if clock.last is None or clock.last <= at:
            return clock.replay.state(ticket.id, at)
        base, position = self._base(session, ticket, at)
        for row in store.events_after(session, ticket.id, position, until=at):
            base.apply(row)
        return base.replay.state(ticket.id, at)

    def replay_rows(self, ticket: ClockTicket, rows: list[StoredEvent]) -> SavedClock:
        """A clock replayed from ``rows`` (the ticket's whole log), in memory."""
        return self.rebuild_from_rows(ticket, rows)[0]

    def rebuild_from_rows(
        self, ticket: ClockTicket, rows: list[StoredEvent]
    ) -> tuple[SavedClock, list[Checkpoint]]:
        """The whole replay of ``rows`` (the ticket's log) and its checkpoints, in memory."""
        clock = self.begin(ticket)
        ordered = sorted(rows, key=_REPLAY_KEY)
        return clock, self._apply(ticket, clock, ordered)

    def state_from_rows(
        self, ticket: ClockTicket, clock: SavedClock, rows: list[StoredEvent], at: datetime
    ) -> TicketState:
        """`state` when the caller holds the whole log (nothing read)."""
        if clock.last is None or clock.last <= at:
            return clock.replay.state(ticket.id, at)
        base = self.begin(ticket)
        for event in replay_order((clock_event(r) for r in rows), at):
            base.apply(event)
        return base.replay.state(ticket.id, at)

    # -- writing ----------------------------------------------------------------------------

    def after_event(self, session: Session, ticket: ClockTicket, row: StoredEvent) -> SavedClock:
        """The clock with ``row`` (just stored) applied: in order, late or whole."""
        clock = self.resume(ticket)
        if clock is None:
            return self.rebuild(session, ticket)
        if clock.last is None or row.occurred_at >= clock.last:
            clock.apply(row)
            self._maybe_checkpoint(session, ticket.id, clock, (row.occurred_at, row.seq))
            return clock
        base = checkpoints.checkpoint_before(session, ticket.id, row.occurred_at)
        resumed = None if base is None else self.resume(ticket, base.state)
        if base is not None and resumed is None:
            return self.rebuild(session, ticket)
        position = None if base is None else base.position
        checkpoints.drop_checkpoints(session, ticket.id, after=position)
        return self._run(session, ticket, resumed or self.begin(ticket), position)

    def rebuild(self, session: Session, ticket: ClockTicket) -> SavedClock:
        """Replay the whole log with the current calendars; checkpoints rebuilt."""
        checkpoints.drop_checkpoints(session, ticket.id, after=None)
        return self._run(session, ticket, self.begin(ticket), None)

    def to_json(self, clock: SavedClock, rows: JsonObject | None = None) -> JsonObject:
        """The clock as saved; ``rows``: the ticket's metric rows as written with it."""
        saved = clock.to_json(self.fingerprint)
        if rows is not None:
            saved["rows"] = rows
        return saved

    @staticmethod
    def saved_rows(ticket: ClockTicket) -> JsonObject | None:
        """The metric rows written with the ticket's saved clock (None: read them)."""
        saved = ticket.clock_state
        return saved.get("rows") if isinstance(saved, dict) else None

    # -- internals --------------------------------------------------------------------------

    def _run(
        self,
        session: Session,
        ticket: ClockTicket,
        clock: SavedClock,
        after: Position | None,
    ) -> SavedClock:
        taken = self._apply(ticket, clock, store.events_after(session, ticket.id, after))
        checkpoints.add_checkpoints(session, ticket.id, taken)
        return clock

    def _apply(
        self, ticket: ClockTicket, clock: SavedClock, rows: list[StoredEvent]
    ) -> list[Checkpoint]:
        """Apply ``rows`` (in replay order) to ``clock``; the checkpoints due on the way."""
        taken = []
        for row in rows:
            clock.apply(row)
            if clock.applied % self.every == 0:
                taken.append(Checkpoint((row.occurred_at, row.seq), self.to_json(clock)))
        return taken

    def _maybe_checkpoint(
        self, session: Session, ticket_id: str, clock: SavedClock, position: Position
    ) -> None:
        if clock.applied % self.every == 0:
            checkpoints.add_checkpoints(
                session, ticket_id, [Checkpoint(position, self.to_json(clock))]
            )

    def _base(
        self, session: Session, ticket: ClockTicket, until: datetime
    ) -> tuple[SavedClock, Position | None]:
        """Where a replay up to ``until`` starts: the last trusted checkpoint, or creation."""
        found = checkpoints.checkpoint_before(session, ticket.id, until)
        if found is not None:
            resumed = self.resume(ticket, found.state)
            if resumed is not None:
                return resumed, found.position
        return self.begin(ticket), None
