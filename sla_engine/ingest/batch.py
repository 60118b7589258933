"""`POST /v1/batch`: many ticket and event requests, each answered as its single call.

Every item runs through the same service call as `POST /v1/tickets` or `POST
/v1/tickets/{id}/events` (`TicketService.create_in_session`, `add_event_in_session`), in a
savepoint: an item that fails is rolled back alone and answered with the problem its single
call would give; the others go on. Items run in order, tickets first, a slice of them per
transaction (`SLICE` items): few commits, while on SQLite the writer lock is let go between
slices so that other requests are not held up for a whole batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sla_engine.edge.problems import Problem, engine_problem
from sla_engine.edge.problems import validation_problem as _validation_problem
from sla_engine.errors import SlaEngineError
from sla_engine.ingest.jsonl import event_request, ticket_request
from sla_engine.tickets import EventCreate, TicketCreate, TicketService
from sla_engine.tickets.store import is_transient

SLICE = 250
"""Items per transaction. Measured (benchmarks/batch_throughput.py, SQLite, in-process): 25,
250 and 1,000 gave 1,197, 1,235 and 1,354 events/s, within the noise of a loaded machine;
250 keeps SQLite's writer lock to about 0.2 s at a time, so other requests are not held up."""
_ATTEMPTS = 3
_SQLITE_BATCHES = threading.Lock()


Call = Callable[[Session, datetime], dict[str, Any]]


@dataclass
class _Item:
    """One item: the call to make, or the problem found before any call."""

    answer: dict[str, Any]
    call: Call | None
    instance: str
    event: bool


class BatchRunner:
    """Runs a batch through one ticket service."""

    def __init__(
        self,
        tickets: TicketService,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        slice_size: int | None = None,
    ) -> None:
        self.tickets = tickets
        self.sessions = sessions
        self.clock = clock
        self.slice_size = slice_size or SLICE

    def run(self, tickets: Sequence[Any], events: Sequence[Any]) -> dict[str, Any]:
        """`{"tickets": [...], "events": [...]}`, one answer per item, in order."""
        items = [self._ticket_item(t) for t in tickets] + [self._event_item(e) for e in events]
        runnable = [item for item in items if item.call is not None]
        with self._turn():
            for start in range(0, len(runnable), self.slice_size):
                self._run_slice(runnable[start : start + self.slice_size])
        return {
            "tickets": [item.answer for item in items if not item.event],
            "events": [item.answer for item in items if item.event],
        }

    # -- items --------------------------------------------------------------------------------

    def _ticket_item(self, body: Any) -> _Item:
        ticket_id = body.get("id") if isinstance(body, dict) else None
        answer: dict[str, Any] = {"id": ticket_id if isinstance(ticket_id, str) else None}
        try:
            req = ticket_request(body)
        except ValidationError as exc:
            return self._refused(answer, exc, "/v1/tickets", event=False)
        return _Item(answer, self._create(req), "/v1/tickets", event=False)

    def _event_item(self, body: Any) -> _Item:
        obj = dict(body) if isinstance(body, dict) else body
        ticket_id = obj.pop("ticket_id", None) if isinstance(obj, dict) else None
        event_id = obj.get("event_id") if isinstance(obj, dict) else None
        answer: dict[str, Any] = {
            "ticket_id": ticket_id if isinstance(ticket_id, str) else None,
            "event_id": event_id if isinstance(event_id, str) else None,
        }
        instance = f"/v1/tickets/{ticket_id}/events"
        if not isinstance(ticket_id, str):
            missing = ticket_id is None
            error = {
                "loc": ("body", "ticket_id"),
                "msg": "field required" if missing else "Input should be a valid string",
                "type": "missing" if missing else "string_type",
                "input": ticket_id,
            }
            answer.update(status=422, problem=_problem_of([error]).to_json("/v1/batch"))
            return _Item(answer, None, "/v1/batch", event=True)
        try:
            req = event_request(obj)
        except ValidationError as exc:
            return self._refused(answer, exc, instance, event=True)
        return _Item(answer, self._add(ticket_id, req), instance, event=True)

    @staticmethod
    def _refused(
        answer: dict[str, Any], exc: ValidationError, instance: str, *, event: bool
    ) -> _Item:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        answer.update(status=422, problem=_problem_of(errors).to_json(instance))
        return _Item(answer, None, instance, event=event)

    def _create(self, req: TicketCreate) -> Call:
        def call(session: Session, now: datetime) -> dict[str, Any]:
            created = self.tickets.create_in_session(session, req, now).get("created", True)
            return {"status": 201 if created else 200}

        return call

    def _add(
        self, ticket_id: str, req: EventCreate
    ) -> Callable[[Session, datetime], dict[str, Any]]:
        def call(session: Session, now: datetime) -> dict[str, Any]:
            answer = self.tickets.add_event_in_session(session, ticket_id, req, now)
            return {"status": 200 if answer.get("duplicate") else 201}

        return call

    # -- running ------------------------------------------------------------------------------

    def _turn(self) -> AbstractContextManager[Any]:
        """On SQLite, batches of this process take turns: their slices queue on the writer
        lock anyway, and interleaved on two connections each slice starts with a cold page
        cache (the other connection's commit voids it): measured, two concurrent batches
        made 750 events/s together against 1,580 for one."""
        if self.sessions.kw["bind"].dialect.name == "sqlite":
            return _SQLITE_BATCHES
        return nullcontext()

    def _run_slice(self, items: Sequence[_Item]) -> None:
        with self.sessions() as session, session.begin():
            for item in items:
                self._run_item(session, item)

    def _run_item(self, session: Session, item: _Item) -> None:
        assert item.call is not None
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with session.begin_nested():
                    item.answer.update(item.call(session, self.clock()))
                return
            except SlaEngineError as exc:
                item.answer.update(
                    status=engine_problem(exc).status,
                    problem=engine_problem(exc).to_json(item.instance),
                )
                return
            except (IntegrityError, OperationalError) as exc:
                # A concurrent writer won a race: the savepoint is rolled back, the item
                # replayed (as a single call is).
                if attempt == _ATTEMPTS or not is_transient(exc):
                    raise


def _problem_of(errors: list[dict[str, Any]]) -> Problem:
    return _validation_problem(RequestValidationError(errors))
