"""Seeing what a matplotlib plot drew: the axes of each figure saved while a test runs."""

from __future__ import annotations

from typing import Any

import pytest


def saved_axes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A list that receives the first axes of each figure saved from now on (the plot
    closes its figures right after saving them, so a test cannot look at them otherwise)."""
    from matplotlib.figure import Figure

    axes: list[Any] = []
    save = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> Any:
        axes.append(self.axes[0])
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return axes
