"""What one configuration costs on its own: parameters, training time, memory and inference latency.

Trials trained together in a vectorized group share one wall clock and one process, so their
`train_time_s` is the group's time shared out and `peak_mem_mb` is the process's high-water
mark. Neither tells which configuration is cheaper. This module measures each configuration
alone, once per distinct shape per process (a short timed solo calibration on a copy of one
member; the trial processes of one `tune` share them, train/shared_costs.py), and labels every
number with how it was obtained:

- `train_time_alone_s`: the fit's own time when the trial trained alone (`measured`), else
  `estimated` = epochs run x (steps per epoch x one solo step + one evaluation pass).
- `config_mem_mb`: on CUDA, `max_memory_allocated` during the solo calibration above what was
  allocated before it (`measured`); on CPU, weights + gradients + optimizer state + one batch's
  activations (`estimated`: the process's RSS cannot be reset per configuration).
- `latency_ms_b1` / `latency_ms_b256`: milliseconds per sample of the trained model's forward
  pass in eval mode at batch 1 and batch 256 (fewer rows when the data set is smaller).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.config.vocabulary import resolve_loss
from tunelab.data.dataset import Dataset
from tunelab.devices import resolve_device
from tunelab.train import shared_costs
from tunelab.train.losses import make_loss
from tunelab.train.optim import make_optimizer
from tunelab.train.trial import batch_rows

CALIBRATION_WARMUP = 2
CALIBRATION_STEPS = 5  # steps per timed block
CALIBRATION_BLOCKS = 15
CALIBRATION_MIN_S = 0.3
LATENCY_BATCHES = (1, 256)
LATENCY_MIN_S = 0.05  # repeat each latency measurement until one round of calls lasts this long
LATENCY_MAX_REPEATS = 4096  # ... or has this many calls
EVAL_SAMPLE_ROWS = 4096  # an evaluation pass is timed on at most this many rows, then scaled

_CALIBRATIONS: dict[tuple[Any, ...], dict[str, float]] = {}  # once per shape per process


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Seconds per call of `fn`, after the caller's warm-up."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def _median_timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Seconds per call: the median of blocks of `repeats` calls, timed until `CALIBRATION_MIN_S` has
    passed (at most `CALIBRATION_BLOCKS` blocks), so one stall of a shared host does not decide it."""
    blocks: list[float] = []
    while not blocks or (sum(blocks) * repeats < CALIBRATION_MIN_S and len(blocks) < CALIBRATION_BLOCKS):
        blocks.append(_timed(fn, device, repeats))
    return statistics.median(blocks)


_LATENCY: dict[tuple[Any, int], float] = {}


def _shape_key(model: nn.Module, data: Dataset, cfg: TrainSection, device: torch.device) -> tuple[Any, ...]:
    shapes = tuple((name, tuple(p.shape)) for name, p in model.named_parameters())
    return (type(model).__name__, shapes, batch_rows(cfg, len(data.train)), cfg.optimizer, cfg.precision,
            len(data.train), len(data.val), cfg.eval_train, str(device))


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    return 0


def _activation_bytes(model: nn.Module, run: Callable[[], Any]) -> int:
    """Bytes of every leaf module's output in one training forward (what backward keeps)."""
    total = [0]

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        total[0] += _tensor_bytes(output)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def calibrate(model: nn.Module, data: Dataset, cfg: TrainSection, loss_name: str) -> dict[str, float]:
    """One solo step's time, one evaluation pass's time and the configuration's memory (cached per shape)."""
    device = resolve_device(cfg.device)
    key = _shape_key(model, data, cfg, device)
    if key in _CALIBRATIONS:
        return _CALIBRATIONS[key]
    shared = shared_costs.read("calibration", key)  # timed by another trial process of this run
    if shared is not None:
        _CALIBRATIONS[key] = shared
        return shared
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    solo = copy.deepcopy(model).to(device).train()
    loss_fn = make_loss(resolve_loss(loss_name, data.task), data.task, cfg.huber_delta)
    optimizer = make_optimizer(solo.parameters(), cfg, device)
    n = len(data.train)
    batch = batch_rows(cfg, n)
    x_all, y_all = data.train.x.to(device), data.train.y.to(device)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
    at = [0]

    def step() -> None:  # like the trainer's step: gather a shuffled batch, forward, backward, update
        start = at[0] if at[0] + batch <= n else 0
        rows = order[start : start + batch]
        at[0] = start + batch
        optimizer.zero_grad(set_to_none=True)
        loss_fn(solo(x_all[rows]), y_all[rows]).backward()
        optimizer.step()

    for _ in range(CALIBRATION_WARMUP):
        step()
    step_s = _median_timed(step, device, CALIBRATION_STEPS)
    eval_s = _eval_time(solo, data, cfg, device)
    if device.type == "cuda":
        _sync(device)
        mem = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        weights = sum(_tensor_bytes(p) for p in solo.parameters())
        state = sum(_tensor_bytes(s) for s in optimizer.state.values())
        acts = _activation_bytes(solo, lambda: solo(x_all[order[:batch]]))
        mem = (2 * weights + state + acts) / 2**20
    steps = -(-n // batch)  # forward+backward passes per epoch
    found = {"step_s": step_s, "steps_per_epoch": float(steps), "eval_s": eval_s, "mem_mb": mem}
    _CALIBRATIONS[key] = found
    shared_costs.write("calibration", key, found)
    return found


@torch.inference_mode()
def _eval_time(model: nn.Module, data: Dataset, cfg: TrainSection, device: torch.device) -> float:
    """One epoch's evaluation (validation, plus the training split with `eval_train`), timed on a sample."""
    rows = len(data.val) + (len(data.train) if cfg.eval_train else 0)
    if rows == 0:
        return 0.0
    source = data.val if len(data.val) else data.train
    x = source.x[: min(EVAL_SAMPLE_ROWS, len(source))].to(device)
    model.eval()
    chunk = 256 if x.dtype == torch.uint8 else EVAL_SAMPLE_ROWS
    run = lambda: [model(x[i : i + chunk]) for i in range(0, len(x), chunk)]  # noqa: E731
    run()
    seconds = _median_timed(run, device, 1) * rows / len(x)
    model.train()
    return seconds


@torch.inference_mode()
def latency_ms(model: nn.Module, data: Dataset, device: torch.device, batch: int) -> float:
    """Milliseconds per sample of the eval-mode forward pass at `batch` rows (or as many as exist)."""
    source = data.val if len(data.val) else data.train
    x = source.x[: max(1, min(batch, len(source)))].to(device)
    was_training = model.training
    model.eval()
    model(x)  # warm-up
    repeats, seconds = 1, 0.0
    while True:
        seconds = _timed(lambda: model(x), device, repeats)
        if seconds * repeats >= LATENCY_MIN_S or repeats >= LATENCY_MAX_REPEATS:
            break
        repeats = _next_repeats(repeats, seconds)
    model.train(was_training)
    return seconds * 1000 / len(x)


def _next_repeats(repeats: int, seconds: float) -> int:
    """Calls in the next timed round: enough for `LATENCY_MIN_S` at the per-call time just measured
    (with 20% to spare), at least twice and at most 16 times the last round. Growing 4x blindly, the
    last round overshot the minimum up to 4x and the earlier rounds added a third."""
    wanted = int(1.2 * LATENCY_MIN_S / max(seconds, 1e-9)) + 1
    return min(LATENCY_MAX_REPEATS, max(2 * repeats, min(16 * repeats, wanted)))


def measure_cost(
    model: nn.Module,
    data: Dataset,
    cfg: TrainSection,
    *,
    loss_name: str,
    epochs_run: int,
    measured_time_s: float | None,
    latency: bool = True,
) -> dict[str, Any]:
    """The cost columns of one trained configuration (see the module docstring for their meaning).

    `measured_time_s` is the fit's own time when it trained alone; None for a member of a group.
    `latency=False` skips the latency timing (a further seed of the same configuration).
    """
    device = resolve_device(cfg.device)
    model = model.to(device)
    cal = calibrate(model, data, cfg, loss_name)
    if measured_time_s is not None:
        time_s, kind = measured_time_s, "measured"
    else:
        time_s = epochs_run * (cal["steps_per_epoch"] * cal["step_s"] + cal["eval_s"])
        kind = "estimated"
    cost: dict[str, Any] = {
        "n_params": param_count(model),
        "train_time_alone_s": round(time_s, 4),
        "train_time_kind": kind,
        "config_mem_mb": round(cal["mem_mb"], 2),
        "config_mem_kind": "measured" if device.type == "cuda" else "estimated",
    }
    key = _shape_key(model, data, cfg, device)
    for batch in LATENCY_BATCHES if latency else ():
        cost[f"latency_ms_b{batch}"] = _latency(model, data, device, key, batch)
    return cost


def _latency(model: nn.Module, data: Dataset, device: torch.device, key: tuple[Any, ...], batch: int) -> float:
    """A shape's latency at `batch` rows, timed once per shape (it does not depend on the weights): cached
    here, else taken from another trial process of this run (train/shared_costs.py), else timed."""
    if (key, batch) not in _LATENCY:
        shared = shared_costs.read(f"latency_b{batch}", key)
        if shared is None:
            shared = round(latency_ms(model, data, device, batch), 5)
            shared_costs.write(f"latency_b{batch}", key, shared)
        _LATENCY[(key, batch)] = shared
    return _LATENCY[(key, batch)]


ShapeCosts = tuple[tuple[Any, ...], dict[str, float], dict[int, float]]  # (shape key, calibration, latencies)


def shape_key(model: nn.Module, data: Dataset, cfg: TrainSection) -> tuple[Any, ...]:
    """What a configuration's timings are cached by (its parameter shapes, batch, optimizer, rows, device)."""
    return _shape_key(model, data, cfg, resolve_device(cfg.device))


def has_shape_costs(key: tuple[Any, ...], latency: bool) -> bool:
    """True when this process already holds the timings `measure_cost` needs for `key`."""
    return key in _CALIBRATIONS and (not latency or all((key, b) in _LATENCY for b in LATENCY_BATCHES))


def shape_costs(model: nn.Module, data: Dataset, cfg: TrainSection, loss_name: str, latency: bool) -> ShapeCosts:
    """One shape's calibration (and latencies), measured here for another process to adopt
    (`adopt_shape_costs`): the timings do not depend on the weights, so an untrained copy serves."""
    device = resolve_device(cfg.device)
    model = model.to(device)
    key = _shape_key(model, data, cfg, device)
    found = calibrate(model, data, cfg, loss_name)
    latencies = {batch: _latency(model, data, device, key, batch) for batch in (LATENCY_BATCHES if latency else ())}
    return key, found, latencies


def adopt_shape_costs(costs: ShapeCosts) -> None:
    """Timings measured by `shape_costs` elsewhere, cached here as if measured here (first one wins)."""
    key, found, latencies = costs
    _CALIBRATIONS.setdefault(key, found)
    for batch, value in latencies.items():
        _LATENCY.setdefault((key, batch), value)
