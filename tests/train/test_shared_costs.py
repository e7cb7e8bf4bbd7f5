"""Cost timings shared by the trial processes of one `tune` (train/shared_costs.py)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from fixtures.cost_models import cost_row, diabetes_mlp
from tunelab.train import cost
from tunelab.train.shared_costs import SHARED_COSTS_ENV, shared_timings


def _time_in_a_child(hidden: list[int]) -> None:
    """Another trial process of the run: its own (empty) caches, the folder from the environment."""
    cost._CALIBRATIONS.clear()
    cost._LATENCY.clear()
    cost_row(*diabetes_mlp(hidden))
    os._exit(0)


def _no_timing(*_args, **_kwargs):
    raise AssertionError("timed again")


@pytest.fixture
def empty_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "_CALIBRATIONS", {})
    monkeypatch.setattr(cost, "_LATENCY", {})


@pytest.fixture
def one_thread():
    """One torch thread while a child is forked, as `tune` forks its trial processes: a child forked
    from a process that ran ops on several threads can hang in its first OpenMP region."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("empty_caches", "one_thread")
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
        found = cost_row(*diabetes_mlp([24]))  # this process never timed the shape: the child's timings
        assert found["train_time_kind"] == "estimated" and found["train_time_alone_s"] > 0
        assert found["latency_ms_b1"] > 0 and found["latency_ms_b256"] > 0
        with pytest.raises(AssertionError, match="timed again"):  # another shape is timed here
            cost_row(*diabetes_mlp([8]))
    assert not folder.exists()  # removed when the run ends
    assert SHARED_COSTS_ENV not in os.environ


@pytest.mark.usefixtures("empty_caches")
def test_each_process_reads_the_same_numbers(tmp_path: Path) -> None:
    with shared_timings(tmp_path / ".cost_timings"):
        exp, data, model = diabetes_mlp([12])
        here = cost_row(exp, data, model)
        cost._CALIBRATIONS.clear()  # as a second process would start: nothing cached in memory
        cost._LATENCY.clear()
        assert cost_row(exp, data, model) == here


@pytest.mark.usefixtures("empty_caches")
def test_outside_a_run_nothing_is_shared(tmp_path: Path) -> None:
    exp, data, model = diabetes_mlp([10])
    cost_row(exp, data, model)
    assert not list(tmp_path.iterdir())
    assert SHARED_COSTS_ENV not in os.environ
