"""`POST /v1/deadlines` and `POST /v1/deadlines/batch`.

The batch endpoint is the hot path: its body is parsed with `json.loads` and column-wise
comprehensions into two int64 arrays (epoch microseconds), answered by one vectorised
`Calendar.add_many` call and formatted back with one zone lookup per distinct UTC day.
Pydantic would build 10,000 models for nothing; the OpenAPI schema still documents the body
(`BatchRequest`). The single endpoint validates with pydantic's JSON parser directly, skipping
FastAPI's generic body handling (about a third of its cost).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from starlette.responses import Response

from sla_engine.api.bodies import body_schema, read_body, read_model
from sla_engine.api.deps import ServicesDep
from sla_engine.api.iso_times import (
    format_instant,
    format_many,
    parse_duration_value,
    parse_instant,
)
from sla_engine.api.lookup import calendar_named, calendar_source, metric_policy
from sla_engine.api.problems import (
    ProblemError,
    invalid,
)
from sla_engine.api.schemas import (
    MAX_BATCH_ITEMS,
    BatchRequest,
    DeadlineRequest,
    ElapsedRequest,
)
from sla_engine.composition import Services
from sla_engine.core.durations import format_duration
from sla_engine.core.times import EPOCH, ONE_US, is_aware
from sla_engine.edge.requests import EARLIEST, LATEST
from sla_engine.errors import InputError, SlaEngineError
from sla_engine.json_types import JsonObject

router = APIRouter(tags=["deadlines"])
T = TypeVar("T")

MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024
MAX_DEADLINE_BODY_BYTES = 64 * 1024
_BATCH_ITEM_KEYS = frozenset({"start", "duration"})


@router.post(
    "/deadlines",
    openapi_extra=body_schema(DeadlineRequest, limit=MAX_DEADLINE_BODY_BYTES),
    responses={200: {"description": "`{deadline, calendar}` (+ `target, policy, metric`)"}},
)
async def deadline(request: Request, services: ServicesDep) -> Response:
    """When a duration of business time from `start` runs out.

    `{calendar, start, duration}`: on that calendar. `{policy, metric?, start}`: the breach
    deadline of the policy's metric (default `first_response`), plus its target if it has one.
    """
    body = await read_model(request, DeadlineRequest)
    answer = _deadline_answer(services, body)
    return Response(json.dumps(answer), media_type="application/json")


def _deadline_answer(services: Services, body: DeadlineRequest) -> JsonObject:
    if body.policy is not None:
        if body.calendar is not None or body.duration is not None:
            field = "calendar" if body.calendar is not None else "duration"
            value = getattr(body, field)
            raise invalid(field, value, "give either {calendar, duration} or {policy}")
        return _policy_deadline(services, body)
    if body.metric is not None:
        raise invalid("metric", body.metric, "metric goes with policy")
    if body.calendar is None:
        raise invalid("calendar", None, "field required (or give policy instead)")
    if body.duration is None:
        raise invalid("duration", None, "field required with calendar")
    cal = calendar_named(body.calendar, "calendar", source=calendar_source(services))
    duration = parse_duration_value(body.duration, "duration")
    end = _engine_call("duration", body.duration, lambda: cal.add(body.start, duration))
    return {"deadline": format_instant(end, cal.tz), "calendar": cal.name}


def _policy_deadline(services: Services, body: DeadlineRequest) -> JsonObject:
    assert body.policy is not None
    metric = metric_policy(services, body.policy, body.metric)
    cal = calendar_named(metric.calendar, "policy", source=calendar_source(services))
    breach = _engine_call("start", body.start, lambda: cal.add(body.start, metric.breach))
    target = None
    target_span = metric.target
    if target_span is not None:
        target_at = _engine_call("start", body.start, lambda: cal.add(body.start, target_span))
        target = format_instant(target_at, cal.tz)
    return {
        "deadline": format_instant(breach, cal.tz),
        "target": target,
        "calendar": cal.name,
        "policy": body.policy,
        "metric": metric.metric,
    }


def _engine_call(field: str, value: object, call: Callable[[], T]) -> T:
    """Run a calendar computation; arithmetic beyond the representable range is a 422."""
    try:
        return call()
    except InputError as exc:
        raise invalid(field, value, exc.message) from None
    except SlaEngineError:
        raise
    except (OverflowError, ValueError) as exc:
        raise invalid(field, value, f"out of the computable range ({exc})") from None


class ElapsedAnswer(BaseModel):
    elapsed_s: float = Field(description="business seconds; negative when `to` < `from`")
    elapsed: str = Field(examples=["4h30m", "-4h30m", "0s", "1.5s"])
    calendar: str


@router.post(
    "/elapsed",
    openapi_extra=body_schema(ElapsedRequest, limit=MAX_DEADLINE_BODY_BYTES),
    responses={200: {"model": ElapsedAnswer, "description": "business time in [from, to)"}},
)
async def elapsed(request: Request, services: ServicesDep) -> Response:
    """Business time in [from, to) on a calendar, in seconds and as a duration string.

    The string is the policy syntax (`"4h30m"`, `"45s"`, `"0s"`, `"1.5s"` below a second),
    with a leading `-` when `to` is before `from`, as `Calendar.elapsed` counts it.
    """
    body = await read_model(request, ElapsedRequest)
    cal = calendar_named(body.calendar, "calendar", source=calendar_source(services))
    spent = _engine_call("to", body.to.isoformat(), lambda: cal.elapsed(body.from_, body.to))
    answer = {
        "elapsed_s": spent.total_seconds(),
        "elapsed": format_duration(spent),
        "calendar": cal.name,
    }
    return Response(json.dumps(answer), media_type="application/json")


@router.post(
    "/deadlines/batch",
    openapi_extra=body_schema(BatchRequest, limit=MAX_BATCH_BODY_BYTES),
    responses={200: {"description": "`{calendar, deadlines: [ISO 8601, ...]}` in item order"}},
)
async def deadlines_batch(request: Request, services: ServicesDep) -> Response:
    """Many deadlines on one calendar in one vectorised call (at most 100,000 items)."""
    doc = _json_object(await read_body(request))
    unknown = set(doc) - {"calendar", "items"}
    if unknown:
        key = sorted(unknown)[0]
        raise invalid(key or '""', doc[key], "unknown field (expected calendar, items)")
    if "calendar" not in doc:
        raise invalid("calendar", None, "field required")
    cal = calendar_named(doc["calendar"], "calendar", source=calendar_source(services))
    items = doc.get("items")
    if not isinstance(items, list):
        raise invalid("items", items, "field required: a list of {start, duration}")
    if len(items) > MAX_BATCH_ITEMS:
        raise invalid("items", f"{len(items)} items", f"at most {MAX_BATCH_ITEMS} items a request")
    starts, durations = _parse_items(items)
    ends = _engine_call(
        "items",
        f"{len(items)} items",
        lambda: cal.add_many(starts.astype("datetime64[us]"), durations.astype("timedelta64[us]")),
    )
    texts = format_many(np.asarray(ends).astype("datetime64[us]").astype(np.int64), cal.tz)
    payload = '{"calendar":' + json.dumps(cal.name) + ',"deadlines":' + json.dumps(texts) + "}"
    return Response(payload, media_type="application/json")


def _json_object(raw: bytes) -> JsonObject:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: too deep
        sample = raw[:80].decode("utf-8", "replace")
        raise invalid("body", sample, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid("body", doc, "must be a JSON object {calendar, items}")
    return doc


def _parse_items(items: list[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Epoch-microsecond starts and durations of the batch items, or a problem naming the item.

    The fast path works column-wise with comprehensions; on any failure the slow path walks
    the items to name the first bad one exactly.
    """
    n = len(items)
    try:
        if any(type(item) is not dict or len(item) != 2 for item in items):
            raise KeyError
        texts = [item["start"] for item in items]
        durations = [item["duration"] for item in items]
        instants = list(map(datetime.fromisoformat, texts))
        # a naive start fails here too: ordering it against an aware bound is a TypeError
        if not all(EARLIEST <= v < LATEST for v in instants):
            raise ValueError
        starts = np.fromiter(((v - EPOCH) // ONE_US for v in instants), dtype=np.int64, count=n)
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        for i, item in enumerate(items):
            _check_item(i, item)
        raise invalid("items", f"{n} items", "invalid items") from None
    return starts, _duration_column(durations)


def _duration_column(values: list[Any]) -> NDArray[np.int64]:
    """Durations in microseconds; each distinct value is parsed once."""
    kinds = set(map(type, values))
    if not kinds <= {str, int, float}:
        bad = next(i for i, v in enumerate(values) if type(v) not in (str, int, float))
        parse_duration_value(values[bad], f"items[{bad}].duration")
    table: dict[Any, int] = {}
    for value in set(values):
        try:
            table[value] = parse_duration_value(value, "duration") // ONE_US
        except (ProblemError, SlaEngineError):
            bad = values.index(value)
            parse_duration_value(value, f"items[{bad}].duration")
            raise
    return np.fromiter(map(table.__getitem__, values), dtype=np.int64, count=len(values))


def _check_item(i: int, item: Any) -> None:
    """Raise the problem of item `i` if it has one."""
    try:
        start = datetime.fromisoformat(item["start"])
        if is_aware(start) and EARLIEST <= start < LATEST and len(item) == 2:
            return
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        pass
    _raise_item_problem(i, item)


def _raise_item_problem(i: int, item: Any) -> None:
    """Name exactly what is wrong with item `i` (the fast loop only knows that something is)."""
    where = f"items[{i}]"
    if not isinstance(item, dict):
        raise invalid(where, item, "must be an object {start, duration}")
    for key in ("start", "duration"):
        if key not in item:
            raise invalid(f"{where}.{key}", None, "field required")
    extra = sorted(set(item) - _BATCH_ITEM_KEYS)
    if extra:
        name = extra[0] or '""'
        raise invalid(f"{where}.{name}", item[extra[0]], "unknown field")
    parse_instant(item["start"], f"{where}.start")
    raise invalid(where, item, "invalid item")
