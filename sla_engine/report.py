"""PURE: first-response attainment numbers and their plot.

From first_response metric rows (one per ticket: its current cycle) and an instant `now`:

- within target: the share of decided tickets answered by `target_at` (the seed's internal
  goal, "more often than not within an hour"). Decided: answered, or not answered and
  already past `target_at`. Tickets whose policy has no target do not count here.
- within breach: the share of decided tickets answered by `breach_at` (the SLA itself).
  Decided: answered, or past `breach_at` without an answer (a running metric past its
  deadline is breached).
- median and p90 business time to first response, in seconds, over answered tickets.
- breaches per ISO week (of `breach_at`, in UTC), and counts.

Tickets still inside their budget are reported as `open`, not counted either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RUNNING = ("active", "paused")


@dataclass(frozen=True)
class ResponseRow:
    """A ticket's first_response metric as stored (status as of its last write)."""

    started_at: datetime | None
    target_at: datetime | None
    breach_at: datetime | None
    stopped_at: datetime | None
    status: str
    business_elapsed_s: float


@dataclass(frozen=True)
class Share:
    """`achieved` of `decided`; `share` is None when nothing is decided yet."""

    achieved: int
    decided: int

    @property
    def share(self) -> float | None:
        return self.achieved / self.decided if self.decided else None

    def to_json(self) -> dict[str, Any]:
        return {"achieved": self.achieved, "decided": self.decided, "share": self.share}


@dataclass(frozen=True)
class Attainment:
    count: int
    answered: int
    open: int
    cancelled: int
    within_target: Share
    within_breach: Share
    median_response_s: float | None
    p90_response_s: float | None
    breaches_per_week: dict[str, int] = field(default_factory=dict)

    @property
    def breaches(self) -> int:
        return self.within_breach.decided - self.within_breach.achieved

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "answered": self.answered,
            "open": self.open,
            "cancelled": self.cancelled,
            "breaches": self.breaches,
            "within_target": self.within_target.to_json(),
            "within_breach": self.within_breach.to_json(),
            "median_response_s": self.median_response_s,
            "p90_response_s": self.p90_response_s,
            "breaches_per_week": dict(self.breaches_per_week),
        }


def _answered(row: ResponseRow) -> bool:
    return row.stopped_at is not None and row.status in ("achieved", "breached")


def _breached(row: ResponseRow, now: datetime) -> bool:
    if row.status == "breached":
        return True
    return row.status in RUNNING and row.breach_at is not None and now > row.breach_at


def _target_outcome(row: ResponseRow, now: datetime) -> bool | None:
    """True: answered by target_at; False: missed; None: no target or not decided yet."""
    if row.target_at is None or row.status == "cancelled":
        return None
    if _answered(row):
        assert row.stopped_at is not None
        return row.stopped_at <= row.target_at
    if now > row.target_at or _breached(row, now):
        return False
    return None


def iso_week(instant: datetime) -> str:
    year, week, _ = instant.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, as numpy's default); None when empty."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def attainment(rows: Iterable[ResponseRow], now: datetime) -> Attainment:
    """Attainment of first_response over `rows`, judged at `now`."""
    rows = list(rows)
    active = [r for r in rows if r.status != "cancelled"]
    breach_hits = breach_decided = target_hits = target_decided = 0
    response_times: list[float] = []
    weeks: Counter[str] = Counter()
    for row in active:
        if _answered(row):
            response_times.append(float(row.business_elapsed_s))
        if _breached(row, now):
            breach_decided += 1
            if row.breach_at is not None:
                weeks[iso_week(row.breach_at)] += 1
        elif _answered(row):
            breach_decided += 1
            breach_hits += 1
        outcome = _target_outcome(row, now)
        if outcome is not None:
            target_decided += 1
            target_hits += int(outcome)
    return Attainment(
        count=len(rows),
        answered=len(response_times),
        open=len(active) - breach_decided,
        cancelled=len(rows) - len(active),
        within_target=Share(target_hits, target_decided),
        within_breach=Share(breach_hits, breach_decided),
        median_response_s=percentile(response_times, 50),
        p90_response_s=percentile(response_times, 90),
        breaches_per_week=dict(sorted(weeks.items())),
    )


def plot_attainment(
    rows: Iterable[ResponseRow],
    path: str | Path,
    *,
    now: datetime | None = None,
    target_s: float | None = 3600.0,
    breach_s: float | None = 4 * 3600.0,
    title: str = "Business time to first response",
) -> Path:
    """Histogram of business response times (hours) with the target and breach marked.

    Writes a PNG to `path` and returns it. `target_s` / `breach_s` are the policy's
    durations (default: the seed's 1 h goal and 4 h SLA); None leaves a line out.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = list(rows)
    summary = attainment(rows, now or datetime.now(UTC))
    hours = np.asarray([r.business_elapsed_s / 3600.0 for r in rows if _answered(r)], dtype=float)
    limits = [h for h in (target_s, breach_s) if h is not None]
    top = 1.05 * max(
        [float(hours.max()) if hours.size else 1.0, *(s / 3600.0 * 1.2 for s in limits)]
    )
    bins = _bins(top)

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    try:
        groups, colours, labels = _split_by_limits(hours, target_s, breach_s)
        ax.hist(
            groups, bins=bins.tolist(), stacked=True, color=colours, edgecolor="white", label=labels
        )
        lines = ((target_s, "#2F7D3B", "target"), (breach_s, "#8C1C24", "breach"))
        for seconds, colour, name in lines:
            if seconds is not None:
                ax.axvline(
                    seconds / 3600.0,
                    color=colour,
                    linestyle="--",
                    linewidth=2,
                    label=f"{name} {_hours_text(seconds)}",
                )
        ax.set_xlabel("business hours to first response")
        ax.set_ylabel("tickets")
        ax.set_xlim(0.0, top)
        ax.set_title(title)
        ax.legend(loc="upper right")
        ax.text(
            0.99,
            0.58,
            _summary_text(summary),
            transform=ax.transAxes,
            ha="right",
            va="top",
            multialignment="left",
            fontsize=9,
            family="monospace",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999999"},
        )
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def _split_by_limits(
    hours: np.ndarray[Any, Any], target_s: float | None, breach_s: float | None
) -> tuple[list[np.ndarray[Any, Any]], list[str], list[str]]:
    """Response times cut at the target and the breach, each part with its colour and label."""
    cuts: list[tuple[float, str, str]] = []
    if target_s is not None:
        cuts.append((target_s / 3600.0, "#55A868", "within target"))
    if breach_s is not None:
        label = "after target, within breach" if target_s is not None else "within breach"
        cuts.append((breach_s / 3600.0, "#4C72B0", label))
    last_colour, last_label = (
        ("#C44E52", "breached")
        if breach_s is not None
        else (("#4C72B0", "after target") if target_s is not None else ("#4C72B0", "answered"))
    )
    parts, colours, labels = [], [], []
    low = -np.inf
    for high, colour, label in sorted(cuts):
        parts.append(hours[(hours > low) & (hours <= high)])
        colours.append(colour)
        labels.append(label)
        low = high
    parts.append(hours[hours > low])
    colours.append(last_colour)
    labels.append(last_label)
    return parts, colours, labels


def _bins(top_h: float) -> np.ndarray[Any, Any]:
    """Bin edges of a round width (5 min, 10 min, ... 1 h, 2 h ...) so limits fall on edges."""
    for minutes in (5, 10, 15, 30, 60, 120, 240, 480, 960, 1920, 3840):
        if top_h * 60 / minutes <= 48:
            break
    width = minutes / 60
    return np.arange(0.0, top_h + width, width)


def _hours_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2f}".rstrip("0").rstrip(".") + " h"


def _percent(share: Share) -> str:
    return "n/a" if share.share is None else f"{share.share:.0%} of {share.decided}"


def _summary_text(summary: Attainment) -> str:
    median = "n/a" if summary.median_response_s is None else _hours_text(summary.median_response_s)
    p90 = "n/a" if summary.p90_response_s is None else _hours_text(summary.p90_response_s)
    return "\n".join(
        [
            f"answered       {summary.answered} of {summary.count}",
            f"within target  {_percent(summary.within_target)}",
            f"within breach  {_percent(summary.within_breach)}",
            f"median         {median}",
            f"p90            {p90}",
        ]
    )
