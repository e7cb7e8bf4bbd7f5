"""Shared helpers for the benchmarks: fair side-by-side timing on a small, busy machine.

Every figure a benchmark reports is a ratio of competitors measured in the same process,
interleaved (A, B, A, B, ...), so load from other processes hits all of them alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(
    competitors: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Run every competitor once per round, in the same order, for `repeats` rounds.

    Returns the wall seconds and the results of each competitor, one entry per round.
    """
    times: dict[str, list[float]] = {name: [] for name in competitors}
    results: dict[str, list[Any]] = {name: [] for name in competitors}
    for _ in range(repeats):
        for name, fn in competitors.items():
            seconds, out = timed(fn)
            times[name].append(seconds)
            results[name].append(out)
    return times, results


def median_ratio(numer: Sequence[float], denom: Sequence[float]) -> float:
    """Median of round-by-round ratios: each pair was measured back to back."""
    return statistics.median(n / d for n, d in zip(numer, denom, strict=True))


def matmul_gflops(n: int = 1024, repeats: int = 7) -> float:
    """This machine's fp32 matmul GFLOP/s on the current torch thread count (median of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    seconds = [timed(lambda: a @ b)[0] for _ in range(repeats)]
    return 2 * n**3 / statistics.median(seconds) / 1e9


def machine() -> dict[str, str]:
    """What a results file should say about where a number came from."""
    model = platform.processor() or "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), model)
    except OSError:
        pass
    return {
        "cpu": model,
        "nproc": str(os.cpu_count()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
