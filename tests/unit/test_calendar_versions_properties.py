"""Property tests: a versioned calendar against a brute-force walk over the union of its pieces.

Each version is a generated calendar (test_calendar_properties' `Reference`, which shares no
code with the engine) in force over [effective_from, next effective_from). The reference open
set is each piece's own open intervals clipped to its span, merged, and every query walks it.
Versions come in different zones (New York, London, Lord Howe, Kathmandu, Phoenix); their
changes fall at random, inside open windows, next to openings and closings, and on DST nights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_engine.core.calendar import Calendar, versioned_calendar
from sla_engine.core.calendar_file import parse_calendar_text
from tests.unit.test_calendar_properties import (
    PROPERTY_SETTINGS,
    TRICKY_TIMES,
    US1,
    ZERO,
    IntervalWalk,
    Reference,
    engine_for,
    merge,
    references,
    utc,
    weekly_seconds,
)

DAY_US = 86_400_000_000


@dataclass
class VersionedReference(IntervalWalk):
    """Pieces in order: (effective_from in UTC, or None for the first; the piece's reference)."""

    pieces: list[tuple[datetime | None, Reference]]

    def spans(self) -> list[tuple[datetime | None, datetime | None, Reference]]:
        ends = [start for start, _ in self.pieces[1:]] + [None]
        return [(start, end, ref) for (start, ref), end in zip(self.pieces, ends, strict=True)]

    def intervals(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
        pieces = []
        for start, end, ref in self.spans():
            a = lo if start is None else max(lo, start)
            b = hi if end is None else min(hi, end)
            if a < b:
                pieces += ref.intervals(a, b)
        return merge(pieces)

    def zone_at(self, t: datetime) -> ZoneInfo:
        zone = self.pieces[0][1].tz
        for start, ref in self.pieces[1:]:
            if start is not None and start <= t:
                zone = ref.tz
        return zone


@st.composite
def versioned(draw: st.DrawFn) -> tuple[VersionedReference, date, Calendar]:
    first, anchor = draw(references())
    later = [draw(references(anchor))[0] for _ in range(draw(st.integers(1, 3), label="n"))]
    midnight = datetime.combine(anchor, time(), UTC)
    bounds: list[datetime] = []
    for before, ref in zip([first, *later], later, strict=False):
        kind = draw(st.sampled_from(["anywhere", "dst night", "at an edge", "inside a window"]))
        if kind == "anywhere":
            at = midnight + timedelta(microseconds=draw(st.integers(-8 * DAY_US, 8 * DAY_US)))
        elif kind == "dst night":  # the wall time on the anchor day, fold=0, in either zone
            zone = draw(st.sampled_from([before.tz, ref.tz]))
            wall = draw(st.sampled_from(TRICKY_TIMES[:8]))
            at = datetime.combine(anchor, time.fromisoformat(wall), zone).astimezone(UTC)
        else:
            found = before.intervals(midnight - timedelta(days=6), midnight + timedelta(days=6))
            if not found:
                continue
            s, e = draw(st.sampled_from(found))
            if kind == "at an edge":
                at = draw(st.sampled_from([s, e])) + draw(st.sampled_from([ZERO, US1, -US1]))
            else:
                at = s + (e - s) * draw(st.floats(0.01, 0.99))
        bounds.append(at)
    pieces: list[tuple[datetime | None, Reference]] = [(None, first)]
    for at, ref in zip(bounds, later, strict=False):
        if pieces[-1][0] is None or at > pieces[-1][0]:  # type: ignore[operator]
            pieces.append((at, ref))
    reference = VersionedReference(pieces)
    given_in = st.sampled_from([UTC, ZoneInfo("Asia/Tokyo"), first.tz])
    specs = [parse_calendar_text(ref.toml(), f"v{i}.toml") for i, (_, ref) in enumerate(pieces)]
    if draw(st.booleans(), label="chained"):
        cal = engine_for(first)
        for (at, _), spec in zip(pieces[1:], specs[1:], strict=True):
            assert at is not None
            cal = cal.with_version(at.astimezone(draw(given_in)), Calendar(spec))
    else:
        cal = versioned_calendar(
            "generated",
            [
                (None if at is None else at.astimezone(draw(given_in)), spec)
                for (at, _), spec in zip(pieces, specs, strict=True)
            ],
        )
    return reference, anchor, cal


@st.composite
def instants(draw: st.DrawFn, reference: VersionedReference, anchor: date) -> datetime:
    base = datetime.combine(anchor, time(), UTC)
    t = base + timedelta(microseconds=draw(st.integers(-9 * DAY_US, 9 * DAY_US)))
    snap = draw(st.sampled_from(["no", "edge", "boundary"]))
    if snap == "edge":
        found = reference.intervals(t - timedelta(days=3), t + timedelta(days=3))
        if found:
            t = draw(st.sampled_from([x for pair in found for x in pair]))
    elif snap == "boundary":
        t = draw(st.sampled_from([at for at, _ in reference.pieces[1:] if at is not None]))
    if snap != "no":
        t += draw(st.sampled_from([ZERO, US1, -US1]))
    return t.astimezone(draw(st.sampled_from([UTC, reference.pieces[-1][1].tz])))


def durations(reference: VersionedReference) -> st.SearchStrategy[timedelta]:
    weekly = min(weekly_seconds(ref) for _, ref in reference.pieces)
    most = min(60 * 3_600_000_000, 2 * weekly * 1_000_000)
    return st.one_of(
        st.just(ZERO),
        st.sampled_from([timedelta(hours=1), timedelta(hours=4)]).filter(
            lambda d: d <= timedelta(microseconds=most)
        ),
        st.integers(1, max(1, most)).map(lambda us: timedelta(microseconds=us)),
    )


VERSION_SETTINGS = settings(
    PROPERTY_SETTINGS, max_examples=max(1, PROPERTY_SETTINGS.max_examples * 2 // 3)
)


@VERSION_SETTINGS
@given(st.data())
def test_versioned_scalar_queries_match_the_walk_over_the_pieces(data: st.DataObject) -> None:
    reference, anchor, cal = data.draw(versioned())
    t = data.draw(instants(reference, anchor), label="t")
    u = data.draw(instants(reference, anchor), label="u")
    d = data.draw(durations(reference), label="d")

    assert cal.is_open(t) == reference.is_open(t)
    assert utc(cal.next_open(t)) == reference.next_open(t)
    assert utc(cal.next_close(t)) == reference.next_close(t)
    assert cal.elapsed(t, u) == reference.elapsed(t, u)
    lo, hi = min(t, u), max(t, u)
    got = cal.open_intervals(lo, hi)
    assert [(utc(a), utc(b)) for a, b in got] == reference.intervals(lo, hi)
    for a, b in got:
        assert a.tzinfo == reference.zone_at(a) and b.tzinfo == reference.zone_at(b)

    end = cal.add(t, d)
    assert utc(end) == reference.add(t, d)
    assert end.tzinfo == reference.zone_at(end)
    assert cal.elapsed(t, end) == d
    assert cal.elapsed(t, utc(end) + US1) == d + US1  # latest

    start = cal.subtract(t, d)
    assert utc(start) == reference.subtract(t, d)
    assert start.tzinfo == reference.zone_at(start)
    assert cal.elapsed(start, t) == d


@VERSION_SETTINGS
@given(st.data())
def test_versioned_vectorised_calls_equal_the_scalar_ones(data: st.DataObject) -> None:
    reference, anchor, cal = data.draw(versioned())
    points = data.draw(st.lists(instants(reference, anchor), min_size=1, max_size=12))
    lengths = data.draw(st.lists(durations(reference), min_size=len(points), max_size=len(points)))
    starts = np.array([p.astimezone(UTC).replace(tzinfo=None) for p in points], "datetime64[us]")
    got = cal.add_many(starts, np.array(lengths, dtype="timedelta64[us]"))
    expected = [cal.add(p, d) for p, d in zip(points, lengths, strict=True)]
    assert got.tolist() == [e.astimezone(UTC).replace(tzinfo=None) for e in expected]
    ends = np.roll(starts, 1)
    assert cal.elapsed_many(starts, ends).tolist() == [
        reference.elapsed(p, q)
        for p, q in zip(points, np.roll(np.array(points, dtype=object), 1), strict=True)
    ]


@settings(VERSION_SETTINGS, max_examples=max(1, PROPERTY_SETTINGS.max_examples // 4))
@given(st.data())
def test_versioned_long_durations_stay_consistent(data: st.DataObject) -> None:
    """Budgets of months to years run through every version and far beyond the last change."""
    reference, anchor, cal = data.draw(versioned())
    t = data.draw(instants(reference, anchor), label="t")
    weekly = min(weekly_seconds(ref) for _, ref in reference.pieces)
    d = timedelta(seconds=data.draw(st.integers(1, 200), label="weeks") * weekly // 2)
    end = cal.add(t, d)
    assert cal.elapsed(t, end) == d
    assert cal.elapsed(cal.subtract(end, d), end) == d
    assert cal.subtract(end, d) <= t
    starts = np.array([utc(t).replace(tzinfo=None)], dtype="datetime64[us]")
    assert cal.add_many(starts, d)[0] == np.datetime64(utc(end).replace(tzinfo=None), "us")
