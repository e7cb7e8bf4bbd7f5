"""Matplotlib plumbing shared by the plots: headless backend, fixed style, deterministic PNG bytes."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede the pyplot import

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from tunelab.runs.outcome import Outcome

SIZE = (7.0, 4.5)
FIXED_LAYOUT = "fixed layout"  # a figure label: margins set by hand, never re-laid out
MAX_RELAYOUT_AXES = 12  # a tight layout over more panels costs seconds; big grids keep their margins
DPI = 110
PNG_LEVEL = 3  # zlib: 6 (the default) costs ~40% more CPU for ~3% smaller files
BAND = (1e-2, 10.0)  # healthy gradient-norm range (PRODUCT.md §4)
STATE_STYLE = {
    Outcome.DIVERGED.value: {"marker": "x", "color": "#d62728", "label": "diverged"},
    Outcome.PRUNED.value: {"marker": "v", "color": "#7f7f7f", "label": "pruned"},
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


def _wrap(text: Text, width: float, renderer: Any) -> bool:
    """Re-wrap one title until it is at most `width` pixels wide; True when its text changed."""
    original = text.get_text()
    for _ in range(4):
        box = text.get_window_extent(renderer)
        if not text.get_text() or box.width <= width:
            break
        lines = text.get_text().split("\n")
        chars = max(8, int(max(len(line) for line in lines) * width / box.width) - 1)
        text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))  # the author's breaks stay
    return text.get_text() != original


def fit_titles(fig: Figure) -> list[Text]:
    """Wrap every axes title and the suptitle so none runs past its axes or the figure's edge, then
    lay the figure out again if anything grew; returns the titles (the tests measure them)."""
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    titles: list[Text] = []
    changed = False
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        box = ax.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2
        room = min(box.width * 1.15, 2 * min(centre - fig_box.x0, fig_box.x1 - centre)) - 4
        for title in (ax.title, ax._left_title, ax._right_title):  # matplotlib lists no titles publicly
            if title.get_text():
                changed |= _wrap(title, room, renderer)
                titles.append(title)
    suptitle = fig._suptitle
    if suptitle is not None and suptitle.get_text():
        changed |= _wrap(suptitle, fig_box.width - 8, renderer)
        titles.append(suptitle)
    if changed and fig.get_label() != FIXED_LAYOUT and len(fig.axes) <= MAX_RELAYOUT_AXES:
        fig.tight_layout()
    return titles


def png_bytes(fig: Figure) -> bytes:
    """Render and close; no Software/date metadata, so a rebuilt folder gives byte-identical PNGs.
    Titles are fitted first; anything still past an edge widens the saved area instead of being cut.
    The figures are opaque: saved as RGB at zlib level 3, 40% less encoding CPU than savefig's RGBA at
    level 6 and ~7% smaller files (a figure widened by `bbox_inches` goes through savefig as before)."""
    buffer = io.BytesIO()
    try:
        titles = fit_titles(fig)
        renderer = fig.canvas.get_renderer()
        outside = any(not _inside(t.get_window_extent(renderer), fig.bbox) for t in titles)
        if outside:
            fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight",
                        pad_inches=0.15)
        else:
            fig.canvas.draw()
            pixels = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
            pixels.save(buffer, format="png", compress_level=PNG_LEVEL, dpi=(DPI, DPI))
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _inside(box: Bbox, frame: Bbox) -> bool:
    return box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1


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

