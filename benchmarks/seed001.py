"""Seed 001's TPE study (examples/seed001_tpe.yaml): one trial at a time against batched rounds.

    python benchmarks/seed001.py [--trials 40] [--repeats 1] [--quick]

First, untimed, the embedding cache is warmed: the frozen encoder's embeddings of the data set
at every `model.max_length` the space holds, in `$TUNELAB_CACHE_DIR/embeddings/` (default
`~/.cache/tunelab/embeddings/`); a cold cache costs minutes of encoding that neither competitor
should pay. Then the file runs as a user runs it, each run a fresh `tunelab tune` process with
its own run folder (final retrain on), interleaved when `--repeats` > 1:

  1-at-a-time   --set search.batch_size=1 (one process, one trial per TPE ask)
  batched       the file's default, search.batch_size auto (rounds of trials shared by one
                trial process per core, same-shape trials in vectorized groups)

Printed per run: wall seconds, trials complete / pruned, best validation objective (val_loss,
MSE), the final model's test MSE (retrained on train+val), and the median wall-time ratio.
`--quick`: the file's quick block (600 rows) with 8 trials. Data: $TUNELAB_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "seed001_tpe.yaml"
COMPETITORS = {"1-at-a-time": ["--set", "search.batch_size=1"], "batched": []}


def warm_cache(quick: bool) -> tuple[Path, float]:
    """Embed the data set at every max_length the space searches (a no-op when already cached)."""
    from tunelab.app.prepare import load
    from tunelab.config.space import parse_space
    from tunelab.data import load_dataset
    from tunelab.text.cache import EmbeddingCache
    from tunelab.text.features import model_inputs

    exp = load(EXAMPLE, quick=quick)
    knob = next((k for k in parse_space(exp) if k.path == "model.max_length"), None)
    lengths = list(knob.values) if knob is not None and knob.values else [exp.model.max_length]
    t0 = time.perf_counter()
    for length in sorted(lengths, reverse=True):  # the longest first: shorter ones reuse its rows
        at = load(EXAMPLE, [f"model.max_length={length}"], quick=quick)
        model_inputs(at, load_dataset(at.data, at.task))
    return EmbeddingCache().dir, time.perf_counter() - t0


def run_once(name: str, trials: int, quick: bool, out: Path) -> dict[str, Any]:
    """One `tunelab tune` process; its wall time and what its JSON result says."""
    cmd = [sys.executable, "-m", "tunelab", "tune", str(EXAMPLE), "--out", str(out), "--json", "-q",
           "--set", f"search.n_trials={trials}", *COMPETITORS[name]]
    if quick:
        cmd.insert(5, "--quick")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    rounds = out / "rounds.log"
    return {
        "wall": wall,
        "complete": result["n_complete"],
        "pruned": result["n_pruned"],
        "best": result["best_value"],
        "test_mse": (result.get("test_metrics") or {}).get("test_loss"),
        "rounds": rounds.read_text().splitlines() if rounds.exists() else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="TPE trials (default 40, --quick 8)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each competitor, interleaved")
    parser.add_argument("--quick", action="store_true", help="the file's quick block (600 rows), 8 trials")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    args = parser.parse_args(argv)
    trials = args.trials or (8 if args.quick else 40)
    if trials < 1 or args.repeats < 1:
        print("seed001.py: --trials and --repeats must be >= 1", file=sys.stderr)
        return 2
    info = machine()
    cache, warm_s = warm_cache(args.quick)
    print(f"# seed001.py  {EXAMPLE.name}: {trials} TPE trials{' (quick: 600 rows)' if args.quick else ''}, "
          f"repeats={args.repeats}, final retrain on")
    print(f"# {info['cpu']}, nproc={info['nproc']}, torch {info['torch']}, {info['date']}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# embedding cache warm ({warm_s:.1f} s, untimed): {cache}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in COMPETITORS}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for rep in range(args.repeats):
            for name in COMPETITORS:
                runs[name].append(run_once(name, trials, args.quick, root / f"{name}_{rep}"))
                print(f"#   {name} run {rep + 1}: {runs[name][-1]['wall']:.1f} s", flush=True)
    rows = [[name, i + 1, f"{r['wall']:.1f}", f"{r['complete']}/{r['pruned']}", f"{r['best']:.5f}",
             f"{r['test_mse']:.5f}" if r["test_mse"] is not None else "-"]
            for name, per in runs.items() for i, r in enumerate(per)]
    print(table(["competitor", "run", "wall s", "complete/pruned", "best val MSE", "final test MSE"], rows))
    ratio = statistics.median(a["wall"] / b["wall"] for a, b in zip(runs["1-at-a-time"], runs["batched"], strict=True))
    print(f"\nbatched is {ratio:.2f}x faster than 1-at-a-time (median of paired runs; target >= 3x)")
    for line in runs["batched"][-1]["rounds"]:
        print(f"  {line}")
    print(json.dumps({name: [r["wall"] for r in per] for name, per in runs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
