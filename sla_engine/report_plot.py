"""The attainment histogram as a PNG (`sla-engine report attainment --plot FILE.png`).

Business time to the metric's stop, in hours, coloured by outcome: within target, after target
within breach, breached; the metrics still running past their deadline are drawn too, at the
business time they have spent so far, as "breached, not stopped". Dashed lines mark the target
and the breach when the caller gives them (only those of the reported policy: with tickets
of several policies there is no one line to draw). Counts are whole tickets, so the y axis has
whole-number ticks; the x axis always holds at least `MIN_BINS` bins, so one ticket's bar
never fills it, and ends past the deadlines and most values: the few far beyond (a ticket left
unanswered for weeks) are counted in the last bin, marked, instead of squeezing the rest.

matplotlib is the `plot` extra (`pip install 'sla-engine[plot]'`); without it a plot is an
`InputError` saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sla_engine.core.times import utcnow
from sla_engine.errors import InputError
from sla_engine.report import Attainment, MetricRow, Share, attainment, breached, stopped

MIN_BINS = 10
MAX_BINS = 48
BIN_MINUTES = (5, 10, 15, 30, 60, 120, 240, 480, 960, 1920, 3840, 7680)
STOP_NAMES = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}
EXTRA_HINT = "pip install 'sla-engine[plot]'"


def plot_attainment(
    rows: Iterable[MetricRow],
    path: str | Path,
    *,
    now: datetime | None = None,
    target_s: float | None = None,
    breach_s: float | None = None,
    metric: str = "first_response",
    title: str | None = None,
) -> Path:
    """Draw the histogram of `rows` into the PNG `path` and return it.

    `target_s` / `breach_s`: the reported policy's durations, drawn as lines (None: no line).
    """
    pyplot, ticker = _matplotlib()
    rows = list(rows)
    now = now or utcnow()
    summary = attainment(rows, now)
    done = np.asarray([r.business_elapsed_s / 3600 for r in rows if stopped(r)], dtype=float)
    overdue = np.asarray(
        [r.business_elapsed_s / 3600 for r in rows if not stopped(r) and breached(r, now)],
        dtype=float,
    )
    limits = [s / 3600 for s in (target_s, breach_s) if s is not None]
    bins = bin_edges([axis_top(list(done), limits)])
    cap = float(bins[-1])
    beyond = int((done >= cap).sum() + (overdue >= cap).sum())
    last = cap - (bins[1] - bins[0]) / 2
    done, overdue = np.minimum(done, last), np.minimum(overdue, last)
    stop_name = STOP_NAMES.get(metric, metric)
    verb = "solved" if metric == "resolution" else "answered"

    fig, ax = pyplot.subplots(figsize=(11, 5), dpi=110)
    try:
        groups, colours, labels = _split_by_limits(done, target_s, breach_s, verb)
        hatches = [""] * len(groups)
        if overdue.size:
            groups.append(overdue)
            colours.append("#7A1F2B")
            labels.append(f"breached, not {verb} yet")
            hatches.append("//")
        _, _, containers = ax.hist(
            groups, bins=bins.tolist(), stacked=True, color=colours, edgecolor="white", label=labels
        )
        for container, hatch in zip(_containers(containers, len(groups)), hatches, strict=True):
            for patch in container:
                patch.set_hatch(hatch)
        if beyond:
            height = int((done >= bins[-2]).sum() + (overdue >= bins[-2]).sum())
            ax.annotate(
                f"{height} at\n{_hours_text(float(bins[-2]) * 3600)}+",
                (last, height),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        lines = ((target_s, "#2F7D3B", "target"), (breach_s, "#8C1C24", "breach"))
        for seconds, colour, name in lines:
            if seconds is not None:
                ax.axvline(
                    seconds / 3600,
                    color=colour,
                    linestyle="--",
                    linewidth=2,
                    label=f"{name} {_hours_text(seconds)}",
                )
        ax.set_xlabel(f"business hours to {stop_name}")
        ax.set_ylabel("tickets")
        ax.set_xlim(0.0, float(bins[-1]))
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_title(title or f"Business time to {stop_name}")
        # legend and numbers beside the plot, where no bar can be under them
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        ax.text(
            1.02,
            0.0,
            _summary_text(summary, verb),
            transform=ax.transAxes,
            ha="left",
            va="bottom",
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
        pyplot.close(fig)
    return out


def _matplotlib() -> tuple[Any, Any]:
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            f"plot: matplotlib is not installed; the plot needs the plot extra: {EXTRA_HINT}",
            field="plot",
        ) from None
    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    return pyplot, ticker


def axis_top(hours: list[float], limits: list[float]) -> float:
    """Where the x axis should reach: half again past the deadlines, and past the bulk (95%)
    of the stop times; the few beyond, and tickets left unanswered for weeks, share the last
    bin."""
    bulk = float(np.percentile(hours, 95)) if hours else 0.0
    return max([bulk, *(1.5 * h for h in limits)])


def bin_edges(hours: Iterable[float]) -> NDArray[np.floating]:
    """Edges from 0 of a round width (5 min, 10 min, ... 1 h, 2 h ...), so limits fall on
    edges, past the largest value by a bin, and at least `MIN_BINS` of them."""
    top = max([0.0, *hours])
    minutes = next((m for m in BIN_MINUTES if top * 60 / m <= MAX_BINS), BIN_MINUTES[-1])
    width = minutes / 60
    count = max(MIN_BINS, ceil(top / width) + 1)
    return np.arange(count + 1) * width


def _containers(containers: Any, groups: int) -> list[Any]:
    """matplotlib returns one container for one group, else a list of them."""
    return [containers] if groups == 1 else list(containers)


def _split_by_limits(
    hours: NDArray[np.floating],
    target_s: float | None,
    breach_s: float | None,
    verb: str = "answered",
) -> tuple[list[NDArray[np.floating]], list[str], list[str]]:
    """Stop times cut at the target and the breach, each part with its colour and label."""
    cuts: list[tuple[float, str, str]] = []
    if target_s is not None:
        cuts.append((target_s / 3600.0, "#55A868", "within target"))
    if breach_s is not None:
        label = "after target, within breach" if target_s is not None else "within breach"
        cuts.append((breach_s / 3600.0, "#4C72B0", label))
    last_colour, last_label = (
        ("#C44E52", "breached")
        if breach_s is not None
        else (("#4C72B0", "after target") if target_s is not None else ("#4C72B0", verb))
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


def _hours_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2f}".rstrip("0").rstrip(".") + " h"


def _percent(share: Share) -> str:
    return "n/a" if share.share is None else f"{share.share:.0%} of {share.decided}"


def _summary_text(summary: Attainment, verb: str) -> str:
    median = "n/a" if summary.median_response_s is None else _hours_text(summary.median_response_s)
    p90 = "n/a" if summary.p90_response_s is None else _hours_text(summary.p90_response_s)
    return "\n".join(
        [
            f"{verb:<15}{summary.answered} of {summary.count}",
            f"within target  {_percent(summary.within_target)}",
            f"within breach  {_percent(summary.within_breach)}",
            f"median         {median}",
            f"p90            {p90}",
        ]
    )
