"""Seed 000's grid on a local two-node Ray cluster vs the same grid on local trial processes.

    TUNELAB_DATA_DIR=../shared/data python benchmarks/cluster.py [--epochs 2] [--max-rows 4000]

Both paths get two trial workers with one core each: `tunelab tune` with `search.n_jobs: 2`
(this process plus one `tunelab worker`), and `tunelab tune --ray ADDRESS` on a cluster of two
one-CPU nodes started here (`ray start --head` plus one `ray start --address`), whose two Ray
tasks run the same worker code. The grid is examples/seed000_grid.yaml (27 configurations,
vectorized groups as by default) with fewer epochs and rows so it runs in a minute or two; the
final retrain is off. Prints:

  cluster start-up  seconds from `ray start` to both nodes answering (paid once per cluster)
  first result      seconds from the command to the first finished trial (process and worker start-up)
  wall              seconds for the whole command, and the Ray path's ratio to the local one

Each study runs in a fresh temporary folder; the cluster is killed (by pid) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/cluster/ray_cluster.py starts and stops the cluster

from tests.cluster.ray_cluster import LocalRayCluster  # noqa: E402


def run_tune(exp: Path, out: Path, extra: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One `tunelab tune` command: wall seconds, seconds to the first finished trial, its result."""
    cmd = [sys.executable, "-m", "tunelab", "tune", str(exp), "--out", str(out), "--quiet", "--json", "--no-final",
           *extra]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and any(out.glob("trials/*/result.json")):
            first = time.monotonic() - started
        time.sleep(0.05)
    wall = time.monotonic() - started
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"tune failed ({' '.join(extra) or 'local'}): {stderr[-2000:]}")
    result = json.loads(stdout)
    return {"wall_s": wall, "first_result_s": first if first is not None else wall, "complete": result["n_complete"],
            "best": result["best_value"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=4000)
    parser.add_argument("--data-dir", default=os.environ.get("TUNELAB_DATA_DIR"))
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("set TUNELAB_DATA_DIR (or --data-dir) to the folder holding california_housing")
    env = {**os.environ, "TUNELAB_DATA_DIR": args.data_dir, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="tlbench") as tmp:
        exp = Path(tmp) / "grid.yaml"
        text = (ROOT / "examples" / "seed000_grid.yaml").read_text(encoding="utf-8").split("\nquick:")[0]
        text = text.replace("  epochs: 15", f"  epochs: {args.epochs}").replace(
            "  split_seed: 42", f"  split_seed: 42\n  max_rows: {args.max_rows}"
        ).replace("  strategy: grid", "  strategy: grid\n  n_jobs: 2")
        exp.write_text(text, encoding="utf-8")

        local = run_tune(exp, Path(tmp) / "local", [], env)
        started = time.monotonic()
        with LocalRayCluster(head_cpus=1, extra=1, env=env) as cluster:
            startup = time.monotonic() - started
            on_ray = run_tune(exp, Path(tmp) / "ray", ["--ray", cluster.address], cluster.env)

    print(f"seed 000 grid: 27 configurations, {args.epochs} epochs, {args.max_rows} rows, 2 workers x 1 core")
    print(f"{'':18}{'wall s':>9}{'first result s':>16}{'complete':>10}{'best val_loss':>15}")
    for name, row in (("local processes", local), ("ray (2 nodes)", on_ray)):
        print(f"{name:18}{row['wall_s']:9.1f}{row['first_result_s']:16.1f}{row['complete']:10d}{row['best']:15.4f}")
    print(f"ray cluster start-up: {startup:.1f} s (once per cluster, not per study)")
    print(f"ray path overhead: {on_ray['wall_s'] / local['wall_s']:.2f}x local wall time "
          f"({on_ray['wall_s'] - local['wall_s']:+.1f} s)")


if __name__ == "__main__":
    main()
