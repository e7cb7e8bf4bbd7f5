"""`search.n_jobs`: extra trial processes on this machine, each an ordinary `tunelab worker` on the
study's storage (the same code path as workers on other machines).

Small models train fastest on one torch thread per process and one process per core; the study
file (SQLite with a busy timeout) or a shared database keeps them from taking the same trial.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tunelab.config.schema import Experiment
from tunelab.lifetime import die_with_parent

log = logging.getLogger(__name__)
TRIAL_PROCESS_ENV = "TUNELAB_TRIAL_PROCESS"  # set in the processes tune starts: they leave messages to tune
STOPPED = (130, 143, -signal.SIGTERM, -signal.SIGINT)


def pin_devices(exp: Experiment, jobs: int) -> list[str | None]:
    """`CUDA_VISIBLE_DEVICES` of each trial process by `search.placement`'s rule; this process
    (the first) is pinned too while it has not touched CUDA yet."""
    from tunelab.search.placement import assign_devices, local_devices

    if exp.resources.gpus_per_trial <= 0:
        return [None] * jobs
    pins = assign_devices(local_devices(), jobs, exp.resources.gpus_per_trial)
    import torch

    if pins and pins[0] is not None and not torch.cuda.is_initialized():
        os.environ["CUDA_VISIBLE_DEVICES"] = pins[0]
    return pins


def spawn_workers(
    n: int,
    run_dir: Path,
    storage_url: str,
    data_dir: str | None,
    *,
    n_trials: int | None = None,
    devices: Sequence[str | None] = (),
    threads: int = 1,
) -> list[subprocess.Popen[bytes]]:
    """Start `n` worker processes on the run folder's study; their errors go to our stderr.
    `n_trials`: a sampler study's total budget (study-wide, so every process gets the same);
    `devices`: each process's CUDA_VISIBLE_DEVICES (None: inherited)."""
    cmd = [sys.executable, "-m", "tunelab", "worker", str(run_dir), "--quiet", "--no-outputs"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if n_trials is not None:
        cmd += ["--n-trials", str(n_trials)]
    # The URL goes through the environment: a password on a command line is visible to `ps`.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TUNELAB_STORAGE": storage_url, TRIAL_PROCESS_ENV: "1"}
    # In the child, before exec: a SIGTERM when `tune` dies (even by SIGKILL), so no trial process
    # outlives the run it belongs to; its trials are retried from their checkpoints on the next run.
    on_parent_death = functools.partial(die_with_parent, signal.SIGTERM, os.getpid())
    pins = list(devices) + [None] * (n - len(devices))
    return [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=_pinned(env, pin), preexec_fn=on_parent_death)
        for pin in pins[:n]
    ]


def _pinned(env: dict[str, str], devices: str | None) -> dict[str, str]:
    return env if devices is None else {**env, "CUDA_VISIBLE_DEVICES": devices}


def wait_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait for every worker; one that failed is reported, its trials are retried by the study."""
    for proc in procs:
        code = proc.wait()
        if code in STOPPED:  # stopped with tune, which says so in its own one line
            continue
        if code != 0:
            log.warning("a trial process (pid %d) exited with code %d; its unfinished trials are retried", proc.pid,
                        code)
