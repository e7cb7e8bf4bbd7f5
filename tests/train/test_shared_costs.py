"""Cost timings shared by the trial processes of one `tune` (train/shared_costs.py)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from tunelab.config.load import load_experiment
from tunelab.data import load_dataset
from tunelab.train import cost
from tunelab.train.shared_costs import SHARED_COSTS_ENV, shared_timings
from tunelab.train.trial import model_for


def _setup(hidden: list[int]):
    raw = {
        "name": "shared_costs",
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": hidden},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
    }
    exp = load_experiment(None, raw=raw)
    data = load_dataset(exp.data, exp.task)
    return exp, data, model_for(exp, data)


def _cost(exp, data, model) -> dict:
    return cost.measure_cost(model, data, exp.train, loss_name=exp.train.loss, epochs_run=2, measured_time_s=None)


def _time_in_a_child(hidden: list[int]) -> None:
    """Another trial process of the run: its own (empty) caches, the folder from the environment."""
    cost._CALIBRATIONS.clear()
    cost._LATENCY.clear()
    _cost(*_setup(hidden))
    os._exit(0)


def _no_timing(*_args, **_kwargs):
    raise AssertionError("timed again")


@pytest.fixture
def empty_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "_CALIBRATIONS", {})
    monkeypatch.setattr(cost, "_LATENCY", {})


@pytest.mark.usefixtures("empty_caches")
def test_a_shape_another_process_timed_is_read_not_timed_again(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / ".cost_timings"
    with shared_timings(folder):
        child = multiprocessing.get_context("fork").Process(target=_time_in_a_child, args=([24],))
        child.start()
        child.join()
        assert child.exitcode == 0
        assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["calibration", "latency_b1", "latency_b256"]
        monkeypatch.setattr(cost, "_median_timed", _no_timing)
        monkeypatch.setattr(cost, "latency_ms", _no_timing)
        found = _cost(*_setup([24]))  # this process never timed the shape: the child's timings
        assert found["train_time_kind"] == "estimated" and found["train_time_alone_s"] > 0
        assert found["latency_ms_b1"] > 0 and found["latency_ms_b256"] > 0
        with pytest.raises(AssertionError, match="timed again"):  # another shape is timed here
            _cost(*_setup([8]))
    assert not folder.exists()  # removed when the run ends
    assert SHARED_COSTS_ENV not in os.environ


@pytest.mark.usefixtures("empty_caches")
def test_each_process_reads_the_same_numbers(tmp_path: Path) -> None:
    with shared_timings(tmp_path / ".cost_timings"):
        exp, data, model = _setup([12])
        here = _cost(exp, data, model)
        cost._CALIBRATIONS.clear()  # as a second process would start: nothing cached in memory
        cost._LATENCY.clear()
        assert _cost(exp, data, model) == here


@pytest.mark.usefixtures("empty_caches")
def test_outside_a_run_nothing_is_shared(tmp_path: Path) -> None:
    exp, data, model = _setup([10])
    _cost(exp, data, model)
    assert not list(tmp_path.iterdir())
    assert SHARED_COSTS_ENV not in os.environ
