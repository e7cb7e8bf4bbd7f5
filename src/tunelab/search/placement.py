"""Where trial workers go: how many fit the declared resources, and which device each one gets.

One rule for local trial processes and for Ray tasks. A trial worker (one trial, or one
vectorized group: it trains as one model, so it is one placement) asks for
`resources.cpus_per_trial` cores and `resources.gpus_per_trial` of a device. A fraction f puts
floor(1/f) workers on each device; a whole number k gives each worker k devices of its own.
Workers are spread over devices before any device takes a second one, so four workers at 0.5 on
four GPUs get one GPU each rather than two GPUs sharing all the work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPS = 1e-9  # 1/3 + 1/3 + 1/3 must still fit in one device


def workers_that_fit(cpus: float, gpus: float, cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trial workers the given cores and devices hold at once (0: not even one)."""
    by_cpu = math.floor(cpus / cpus_per_trial + EPS)
    if gpus_per_trial <= 0:
        return max(0, by_cpu)
    if gpus_per_trial >= 1:
        by_gpu = math.floor(gpus / gpus_per_trial + EPS)
    else:
        by_gpu = math.floor(gpus + EPS) * math.floor(1 / gpus_per_trial + EPS)
    return max(0, min(by_cpu, by_gpu))


def assign_devices(devices: Sequence[str], n_workers: int, gpus_per_trial: float) -> list[str | None]:
    """`CUDA_VISIBLE_DEVICES` for each of `n_workers` trial workers (None: leave the variable alone).

    Args:
        devices: the device ids this machine may use, e.g. ["0", "1"] (from CUDA_VISIBLE_DEVICES
            or the device count).
        n_workers: trial workers to place; more than fit is a programming error (cap them with
            `workers_that_fit` first).
        gpus_per_trial: 0 (no reservation), a fraction of one device, or a whole number of devices.

    Returns:
        One entry per worker, in start order: a comma-separated device list.
    """
    if gpus_per_trial <= 0 or not devices:
        return [None] * n_workers
    if gpus_per_trial >= 1:
        width = int(gpus_per_trial)
        groups = [devices[i : i + width] for i in range(0, len(devices) - width + 1, width)]
        if n_workers > len(groups):
            raise ValueError(f"{n_workers} workers at {width} devices each do not fit {len(devices)} devices")
        return [",".join(group) for group in groups[:n_workers]]
    per_device = math.floor(1 / gpus_per_trial + EPS)
    if n_workers > per_device * len(devices):
        raise ValueError(f"{n_workers} workers at {gpus_per_trial} of a device do not fit {len(devices)} devices")
    return [devices[i % len(devices)] for i in range(n_workers)]  # round robin: spread before sharing


def visible_devices(env: dict[str, str], device_count: int) -> list[str]:
    """The device ids this process may hand out: CUDA_VISIBLE_DEVICES when set, else 0..count-1."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(device_count)]


def local_devices() -> list[str]:
    """This machine's usable CUDA devices, without initialising CUDA in this process."""
    import os

    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        count = 0
    return visible_devices(dict(os.environ), count)
