"""A group's cost timings taken by a forked helper while it trains (search/cost_ahead.py)."""

from __future__ import annotations

import os

import pytest

from tunelab.config.load import load_experiment
from tunelab.data import load_dataset
from tunelab.search import cost_ahead
from tunelab.search.cost_ahead import CostAhead, IdleProbe, spare_core
from tunelab.train import cost
from tunelab.train.trial import model_for


def _member(hidden: list[int], threads: int | str = 1):
    raw = {
        "name": "cost_ahead_unit",
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": hidden},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "threads": threads},
    }
    exp = load_experiment(None, raw=raw)
    data = load_dataset(exp.data, exp.task)
    return model_for(exp, data), data, exp.train


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "_CALIBRATIONS", {})
    monkeypatch.setattr(cost, "_LATENCY", {})


def test_timings_taken_by_the_helper_are_used_here_without_timing_again(monkeypatch: pytest.MonkeyPatch) -> None:
    small, wide = _member([8]), _member([64, 64])
    with CostAhead() as ahead:
        ahead.open(small[2])
        jobs = ahead.start([small, _member([8]), wide])  # two members of one shape: timed once
        assert len(jobs) == 2
        ahead.finish(jobs)
        assert ahead.start([small, wide]) == []  # cached here now: nothing to send
        helper = list(ahead._pool._processes.values())  # type: ignore[union-attr]
    for proc in helper:  # closed with the block
        proc.join(timeout=30)
        assert proc.exitcode is not None

    def no_timing(*_args, **_kwargs):
        raise AssertionError("timed in the trial process")

    monkeypatch.setattr(cost, "_median_timed", no_timing)
    monkeypatch.setattr(cost, "latency_ms", no_timing)
    for model, data, cfg in (small, wide):
        row = cost.measure_cost(model, data, cfg, loss_name=cfg.loss, epochs_run=3, measured_time_s=None)
        cal = cost.calibrate(model, data, cfg, cfg.loss)
        assert row["train_time_kind"] == "estimated" and row["train_time_alone_s"] > 0
        assert row["train_time_alone_s"] == pytest.approx(
            3 * (cal["steps_per_epoch"] * cal["step_s"] + cal["eval_s"]), abs=1e-4)
        assert row["latency_ms_b1"] > 0 and row["latency_ms_b256"] > 0
    assert cost.calibrate(*wide, wide[2].loss)["mem_mb"] > 10 * cost.calibrate(*small, small[2].loss)["mem_mb"]


def test_a_dead_helper_leaves_the_cache_to_the_trial_process() -> None:
    member = _member([8])
    with CostAhead() as ahead:
        ahead.open(member[2])
        for proc in list(ahead._pool._processes.values()):  # type: ignore[union-attr]
            proc.kill()
            proc.join()
        ahead.finish(ahead.start([member]))
    key = cost.shape_key(*member)
    assert not cost.has_shape_costs(key, latency=False)
    cost.measure_cost(member[0], member[1], member[2], loss_name="mse", epochs_run=1, measured_time_s=None)
    assert cost.has_shape_costs(key, latency=True)


def test_a_helper_only_where_a_core_is_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    one, auto = _member([8])[2], _member([8], threads="auto")[2]
    assert spare_core(1, one) and spare_core(3, one)
    assert not spare_core(4, one)
    assert not spare_core(1, auto)  # one process on every core
    # measured while the study started: this process busy on one core, the host's other work on the rest
    assert spare_core(1, one, idle_cores=3.0) and spare_core(2, one, idle_cores=2.0)
    assert not spare_core(1, one, idle_cores=0.3)  # a loaded host: the helpers would slow the training
    assert not spare_core(2, one, idle_cores=1.2)  # the second trial process takes the idle core
    unopened = CostAhead()
    assert unopened.start([_member([8])]) == []  # never opened: trial_cost times in-process


def test_the_idle_probe_reads_the_host_s_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([(1000, 4000, 4), (1300, 4400, 4)])  # 300 of 400 ticks idle on 4 cores
    monkeypatch.setattr(cost_ahead, "_cpu_ticks", lambda: next(ticks))
    assert IdleProbe().idle_cores() == pytest.approx(3.0)
    short = iter([(1000, 4000, 4), (1005, 4010, 4)])  # too short a window to say
    monkeypatch.setattr(cost_ahead, "_cpu_ticks", lambda: next(short))
    assert IdleProbe().idle_cores() is None
    monkeypatch.setattr(cost_ahead, "_cpu_ticks", lambda: None)  # no /proc/stat
    assert IdleProbe().idle_cores() is None
    monkeypatch.undo()
    real = cost_ahead._cpu_ticks()
    if real is not None:  # Linux: idle and all ticks, and this machine's cores
        assert 0 <= real[0] <= real[1] and real[2] == os.cpu_count()
