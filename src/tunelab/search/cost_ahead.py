"""A vectorized group's cost timings measured by a forked helper while the group trains.

`train/cost.py` times a solo step, an evaluation pass and the inference latency once per shape per
process: about 0.7 s of timed work per shape whatever the training's length. After a group those
timings sat on the study's critical path (seed 000's grid: three shapes, ~2 s of a 45 s study).
They do not depend on the weights, so a helper process measures them on the group's untrained
members while the group trains, and `trial_cost` then finds them cached.

Only where a core is spare (the study's trial processes and their torch threads leave a core, and
the host was measured idle enough while the study started: `IdleProbe`) and on CPU (a forked child
cannot use its parent's CUDA context): otherwise the helper takes its time from the training it
overlaps (measured on a loaded host: the groups' fit took twice as long). The timings are then taken beside a training
process on the other core, as they are in every trial process of an `n_jobs: 2` study. A helper
that fails or dies costs nothing but the overlap: `trial_cost` measures in-process as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.data.dataset import Dataset
from tunelab.devices import resolve_device
from tunelab.lifetime import die_with_parent
from tunelab.train.cost import ShapeCosts, adopt_shape_costs, has_shape_costs, shape_costs, shape_key

log = logging.getLogger(__name__)
Member = tuple[nn.Module, Dataset, TrainSection]  # a trial's first seed: model, data, recipe


MIN_IDLE_CORES = 0.6  # measured idle capacity, beyond the trial processes still to start, that counts as a core
MIN_WINDOW_TICKS = 20  # /proc/stat ticks (1/100 s per core) below which the idle measure says nothing


def _threads(cfg: TrainSection) -> int:
    return (os.cpu_count() or 1) if cfg.threads == "auto" else int(cfg.threads)


class IdleProbe:
    """The host's idle cores between its creation and `idle_cores()` (Linux /proc/stat; else None).

    Other people's work is invisible to `os.cpu_count()`: on a shared, loaded host the helpers would
    take their CPU from this study's own training. `tune` starts a probe before it loads the data and
    reads it once the trial processes are known; that window's own busy core is this process."""

    def __init__(self) -> None:
        self._start = _cpu_ticks()

    def idle_cores(self) -> float | None:
        end = _cpu_ticks()
        if self._start is None or end is None:
            return None
        idle, total = end[0] - self._start[0], end[1] - self._start[1]
        if total < MIN_WINDOW_TICKS:
            return None
        return end[2] * idle / total


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(idle + iowait ticks, all ticks, cores) from /proc/stat, or None where there is none."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:]]
    if len(fields) < 5:
        return None
    return fields[3] + fields[4], sum(fields[:8]), sum(1 for line in lines if line[:3] == "cpu" and line[3:4].isdigit())


def spare_core(jobs: int, cfg: TrainSection, idle_cores: float | None = None) -> bool:
    """True when `jobs` trial processes training on CPU with `cfg.threads` torch threads leave a core
    idle: by count, and by the idle capacity measured while this process prepared the study
    (`IdleProbe`; this process already ran there, the other `jobs - 1` did not)."""
    threads = _threads(cfg)
    if resolve_device(cfg.device).type != "cpu" or jobs * threads >= (os.cpu_count() or 1):
        return False
    return idle_cores is None or idle_cores - (jobs - 1) * threads >= MIN_IDLE_CORES


def _init(threads: int, parent: int) -> None:
    die_with_parent(signal.SIGKILL, parent)
    torch.set_num_threads(threads)  # time a step as the trial process runs it


def _measure(payload: bytes) -> ShapeCosts:
    model, data, cfg = pickle.loads(payload)
    return shape_costs(model, data, cfg, cfg.loss, latency=True)


class CostAhead:
    """One forked helper that times shapes for this process's cost cache; idle until `open`."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: list[Future[ShapeCosts]] = []  # submitted and not yet adopted

    def open(self, cfg: TrainSection) -> None:
        """Fork the helper now, before training starts threads in this process (writer, heartbeats)."""
        if self._pool is not None or "fork" not in multiprocessing.get_all_start_methods():
            return
        try:
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_init,
                                       initargs=(_threads(cfg), os.getpid()))
            pool.submit(int)  # with fork the executor starts its process at the first submit
        except (OSError, RuntimeError) as exc:
            log.debug("cost helper unavailable: %s", exc)
            return
        self._pool = pool

    def start(self, members: Sequence[Member]) -> list[Future[ShapeCosts]]:
        """Time every shape among `members` not yet cached here; call before the group trains.
        The members are copied now (the group then trains them)."""
        jobs: list[Future[ShapeCosts]] = []
        seen = set()
        for model, data, cfg in members if self._pool is not None else ():
            key = shape_key(model, data, cfg)
            if key in seen or has_shape_costs(key, latency=True):
                continue
            seen.add(key)
            try:
                job = self._pool.submit(_measure, pickle.dumps((model, data, cfg)))  # type: ignore[union-attr]
                jobs.append(job)
                self._jobs.append(job)
            except (RuntimeError, pickle.PicklingError, TypeError, AttributeError) as exc:  # broken or unpicklable
                log.debug("cost helper not used: %s", exc)
                break
        return jobs

    def finish(self, jobs: Sequence[Future[ShapeCosts]]) -> None:
        """Adopt what the helper measured (waiting for it); a failure leaves the cache as it was."""
        for job in jobs:
            try:
                self._jobs.remove(job)
                adopt_shape_costs(job.result())
            except Exception as exc:  # the helper died or a timing failed: trial_cost measures here
                log.debug("cost helper failed: %s", exc)

    def close(self) -> None:
        """Stop the helper: idle once its timings were adopted; one still timing (a trial that failed,
        Ctrl-C) is killed, since a timing is only ever an overlap."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if any(not job.done() for job in self._jobs):
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.kill()
        self._jobs.clear()
        pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> CostAhead:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
