"""The one placement rule: how many trial workers fit, and which device each one gets."""

from __future__ import annotations

import pytest

from tunelab.app.ray_jobs import cluster_workers
from tunelab.config.load import validate_experiment
from tunelab.search.placement import assign_devices, visible_devices, workers_that_fit


def test_a_fraction_of_a_device_puts_that_many_workers_on_each_device():
    assert workers_that_fit(cpus=64, gpus=2, cpus_per_trial=1, gpus_per_trial=0.25) == 8
    assert workers_that_fit(cpus=64, gpus=1, cpus_per_trial=1, gpus_per_trial=1 / 3) == 3
    assert workers_that_fit(cpus=64, gpus=4, cpus_per_trial=1, gpus_per_trial=2) == 2
    assert workers_that_fit(cpus=64, gpus=3, cpus_per_trial=1, gpus_per_trial=0.4) == 6  # 2 per device, not 7


def test_cores_bound_the_workers_too_and_no_gpu_means_cores_alone():
    assert workers_that_fit(cpus=4, gpus=2, cpus_per_trial=1, gpus_per_trial=0.25) == 4
    assert workers_that_fit(cpus=16, gpus=0, cpus_per_trial=3, gpus_per_trial=0) == 5
    assert workers_that_fit(cpus=16, gpus=0, cpus_per_trial=1, gpus_per_trial=0.5) == 0
    assert workers_that_fit(cpus=1, gpus=1, cpus_per_trial=2, gpus_per_trial=0) == 0


def test_workers_spread_over_devices_before_sharing_one():
    assert assign_devices(["0", "1"], 4, 0.25) == ["0", "1", "0", "1"]
    assert assign_devices(["0", "1", "2", "3"], 3, 0.5) == ["0", "1", "2"]
    assert assign_devices(["4", "7"], 2, 0.5) == ["4", "7"]  # the ids the machine allows, not 0..n


def test_whole_devices_are_handed_out_in_disjoint_sets():
    assert assign_devices(["0", "1", "2", "3"], 2, 2) == ["0,1", "2,3"]
    assert assign_devices(["0", "1", "2"], 1, 1) == ["0"]
    with pytest.raises(ValueError, match="do not fit"):
        assign_devices(["0", "1", "2"], 2, 2)


def test_no_reservation_or_no_device_leaves_every_worker_unpinned():
    assert assign_devices(["0", "1"], 3, 0) == [None, None, None]
    assert assign_devices([], 2, 0.5) == [None, None]


def test_more_workers_than_slots_is_refused():
    with pytest.raises(ValueError, match=r"5 workers at 0\.5"):
        assign_devices(["0", "1"], 5, 0.5)


def test_visible_devices_follow_cuda_visible_devices_when_set():
    assert visible_devices({}, 2) == ["0", "1"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "3, 5"}, 8) == ["3", "5"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}, 8) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "-1"}, 8) == []


def _exp(**search):
    return validate_experiment(
        {"search": {"strategy": "grid", "space": {"train.lr": [0.1, 0.01]}, **search},
         "resources": {"cpus_per_trial": 2, "gpus_per_trial": 0.5}},
        source="test",
    )


def test_a_ray_cluster_gets_as_many_workers_as_it_holds_and_the_work_needs():
    exp = _exp()
    assert cluster_workers(exp, units=100, cpus=16, gpus=2) == 4  # 2 GPUs x 2 halves
    assert cluster_workers(exp, units=3, cpus=16, gpus=2) == 3  # no more than the units of work
    assert cluster_workers(exp, units=100, cpus=5, gpus=8) == 2  # cores bind first
    assert cluster_workers(_exp(n_jobs=1), units=100, cpus=16, gpus=2) == 1


def test_a_cluster_that_cannot_hold_one_worker_is_a_one_line_error():
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^resources: one trial worker needs 2.0 CPU and 0.5 GPU; the Ray cluster "
                                          r"has 16 CPU and 0 GPU$"):
        cluster_workers(_exp(), units=4, cpus=16, gpus=0)


def test_gpus_per_trial_above_one_must_be_whole():
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"gpus_per_trial above 1 must be a whole number of devices, got 1\.5"):
        validate_experiment({"resources": {"gpus_per_trial": 1.5}}, source="test")
