"""Re-run the examples and rewrite README's results table from what they actually produced.

Every figure the README quotes must come from a command anyone can run. This script runs each
selected example through the CLI (full budget, or its `quick:` block with --quick), reads the run
folder (best validation value, the final model's test metrics, wall time), and rewrites the table
between `<!-- results:start -->` and `<!-- results:end -->` in README.md. Rows of examples it did
not run are kept as they were, with the date they were measured. With --repeat N an example runs
N times into fresh folders and the table gives the mean and the spread (min..max).

    make results                                   # the fast examples, full budgets
    python scripts/results.py --quick              # every fast example with its quick: budget
    python scripts/results.py seed000_grid --repeat 2
Real data sets are read from $TUNELAB_DATA_DIR (the Makefile points it at ../shared/data). The slow
examples and those that need a folder made first run only when named. An example that fails keeps
its old row; the others are still written, and the script exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
# Examples that take minutes at full budget on a 2-core CPU: run only when named.
SLOW = ("seed001_tpe", "seed002_usps_ablation", "seed002_usps_tuned", "seed002_house_ablation", "seed003_cnn_study")
# Examples that need a folder made first: run only when named (the file's comment says how).
PREPARED = ("seed003_image_folder",)
HEADER = "| example | budget | best validation | final test | wall time | measured |"


class RunFailed(Exception):
    """An example's CLI run exited non-zero: the message holds its command and error line."""


@dataclass
class Row:
    """One example's headline numbers, as the table shows them."""

    example: str
    budget: str
    best_val: str
    test: str
    wall: str
    measured: str

    def line(self) -> str:
        cells = [f"`{self.example}`", self.budget, self.best_val, self.test, self.wall, self.measured]
        return "| " + " | ".join(cells) + " |"


def _spread(values: list[float], digits: int = 4) -> str:
    """`0.7755` for one value; `0.7755 (0.7741..0.7769, 2 runs)` for several."""
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ({min(values):.{digits}g}..{max(values):.{digits}g}, {len(values)} runs)"


def _headline_test(metrics: dict[str, object]) -> tuple[str, float] | None:
    """The final model's headline test metric: R² for regression, accuracy for classification."""
    for key in ("test_r2", "test_accuracy", "test_loss"):
        if isinstance(metrics.get(key), int | float):
            return key, float(metrics[key])  # type: ignore[arg-type]
    return None


def run_once(example: Path, quick: bool, out: Path) -> tuple[str, float | None, tuple[str, float] | None, float]:
    """One CLI run: (objective name, best validation value, headline test metric, wall seconds)."""
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    search = raw.get("search") or {}
    command = "train" if search.get("strategy", "none") == "none" else "tune"
    argv = [sys.executable, "-m", "tunelab", command, str(example), "--out", str(out), "--quiet", "--json"]
    start = time.perf_counter()
    proc = subprocess.run(argv + (["--quick"] if quick else []), capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RunFailed(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if command == "train":
        return result.get("monitor", "val_loss"), result.get("best_value"), None, wall
    metric = (search.get("objective") or {}).get("metric", "val_loss")
    final = out / "final" / "test_metrics.json"
    test = _headline_test(json.loads(final.read_text(encoding="utf-8"))) if final.is_file() else None
    return metric, result.get("best_value"), test, wall


def measure(example: Path, quick: bool, repeat: int, work: Path, today: str) -> Row:
    """Run an example `repeat` times and summarise it as one table row."""
    vals: list[float] = []
    tests: list[float] = []
    walls: list[float] = []
    metric, test_key = "val_loss", None
    for i in range(repeat):
        metric, best, test, wall = run_once(example, quick, work / f"{example.stem}-{i}")
        walls.append(wall)
        if best is not None:
            vals.append(float(best))
        if test is not None:
            test_key, value = test
            tests.append(value)
        shown = f"{test[0]}={test[1]:.4g}" if test is not None else "no final test"
        print(f"results: {example.stem} run {i + 1}/{repeat}: {metric}={best} {shown} {wall:.1f}s")
    return Row(
        example=example.stem,
        budget="quick" if quick else "full",
        best_val=f"{metric} {_spread(vals)}",
        test=f"{test_key} {_spread(tests)}" if test_key else "-",
        wall=f"{statistics.fmean(walls):.0f} s",
        measured=today,
    )


def existing_rows(text: str) -> dict[str, str]:
    """The table lines now between the markers, keyed by example name."""
    if START not in text or END not in text:
        raise SystemExit(f"error: README.md has no {START} ... {END} block to rewrite")
    block = text.split(START, 1)[1].split(END, 1)[0]
    rows = {}
    for line in block.splitlines():
        found = re.match(r"\| `([\w.-]+)` \|", line)
        if found:
            rows[found.group(1)] = line
    return rows


def machine() -> str:
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs{load}, Python {platform.python_version()}"


def rewrite(readme: Path, measured: list[Row], command: str, today: str) -> None:
    """Replace the marked block: the command, machine and date, then one row per example."""
    text = readme.read_text(encoding="utf-8")
    rows = existing_rows(text)
    rows.update({row.example: row.line() for row in measured})
    lines = [
        START,
        f"Last rewritten {today} by `{command}` on {machine()}; "
        "times are wall clock on a shared machine, so upper bounds.",
        "",
        HEADER,
        "|---|---|---|---|---|---|",
        *(rows[name] for name in sorted(rows)),
        END,
    ]
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + "\n".join(lines) + after, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", help="Example names (default: every example but the slow ones).")
    parser.add_argument("--quick", action="store_true", help="Use each example's quick: budget.")
    parser.add_argument("--repeat", type=int, default=1, help="Runs per example; the table shows the spread.")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--dry-run", action="store_true", help="Print the rows, leave README.md alone.")
    args = parser.parse_args(argv)
    known = {p.stem: p for p in sorted((ROOT / "examples").glob("*.yaml"))}
    names = args.examples or [name for name in known if name not in SLOW + PREPARED]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"error: unknown example {unknown[0]!r}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="tunelab-results-") as work:
        for name in names:  # one failing example costs its own row, not the whole table
            try:
                rows.append(measure(known[name], args.quick, args.repeat, Path(work), today))
            except RunFailed as exc:
                print(f"error: {name}: {exc}", file=sys.stderr)
                failed.append(name)
    for row in rows:
        print(row.line())
    if rows and not args.dry_run:
        command = "python scripts/results.py " + " ".join(argv if argv is not None else sys.argv[1:])
        rewrite(args.readme, rows, command.strip(), today)
        print(f"results: rewrote the table in {args.readme}")
    if failed:
        print(f"error: {len(failed)} example(s) failed, their rows kept as they were: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
