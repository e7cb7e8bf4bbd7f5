"""Matplotlib plumbing shared by the plots: headless backend, fixed style, deterministic PNG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede the pyplot import

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SIZE = (7.0, 4.5)
DPI = 110
BAND = (1e-2, 10.0)  # healthy gradient-norm range (PRODUCT.md §4)
STATE_STYLE = {
    "diverged": {"marker": "x", "color": "#d62728", "label": "diverged"},
    "pruned": {"marker": "v", "color": "#7f7f7f", "label": "pruned"},
    "failed": {"marker": "X", "color": "#8c564b", "label": "failed"},
}
# Fixed, bundled font and no hash salt randomness: the same folder always gives the same bytes.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "svg.hashsalt": "tunelab",
}


@contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(size: tuple[float, float] = SIZE, rows: int = 1, cols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, **kwargs)
    return fig, axes


def png_bytes(fig: Figure) -> bytes:
    """Render and close; no Software/date metadata, so a rebuilt folder gives byte-identical PNGs."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def robust_limits(values: Sequence[float], log: bool = False) -> tuple[float, float] | None:
    """y-limits that keep a blown-up curve from flattening the others (upper: 98th percentile)."""
    data = sorted(v for v in values if math.isfinite(v) and (v > 0 or not log))
    if not data:
        return None
    lo, hi = data[0], data[-1]
    p98 = data[min(len(data) - 1, int(0.98 * len(data)))]
    top = data[int(0.9 * (len(data) - 1))]
    if hi > 3 * max(top, 1e-12) and p98 < hi:
        hi = p98 * 1.2
    if log:
        return lo / 1.5, hi * 1.5
    pad = (hi - lo) * 0.06 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def mark_states(ax: Axes, points: Sequence[tuple[float, str]], y: float) -> None:
    """Trials without an objective (diverged, pruned, failed) as markers along the top edge."""
    labelled: set[str] = set()
    for x, state in points:
        kw = STATE_STYLE.get(state, STATE_STYLE["failed"])
        label = kw["label"] if kw["label"] not in labelled else None
        labelled.add(kw["label"])
        ax.scatter([x], [y], marker=kw["marker"], color=kw["color"], s=55, zorder=4, label=label, clip_on=False)

