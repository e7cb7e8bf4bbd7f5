"""Choosing where trials run: without Ray nothing changes and `backend: ray` says how to install
it; `--ray ADDRESS` is the two settings; local trial processes are pinned by the placement rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.app.ray_jobs import ray_overrides
from tunelab.cli import app
from tunelab.config.load import validate_experiment
from tunelab.search import local_jobs, placement, planning

TINY = """\
name: tiny
data:
  name: diabetes
model:
  family: mlp
  hidden_dims: [8]
train:
  epochs: 1
  batch_size: full
search:
  strategy: grid
  n_jobs: 1
  space:
    train.lr: [0.01, 0.1]
final:
  enabled: false
"""


@pytest.fixture
def no_ray(monkeypatch):
    """`import ray` fails, as where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_backend_ray_without_ray_is_one_line_and_writes_nothing(no_ray, tiny, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["tune", str(tiny), "--out", str(out), "--quiet", "--set", "search.backend=ray"])
    assert res.exit_code == 2
    assert res.stderr == (
        "error: --set search.backend=ray: Ray is not installed; install it with: pip install 'tunelab[ray]'\n"
    )
    assert not out.exists()
    res = CliRunner().invoke(app, ["tune", str(tiny), "--out", str(out), "--quiet", "--ray", "auto"])
    assert res.exit_code == 2 and "pip install 'tunelab[ray]'" in res.stderr
    assert not out.exists()


def test_without_ray_a_local_study_runs_unchanged(no_ray, tiny, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["tune", str(tiny), "--out", str(out), "--quiet", "--json"])
    assert res.exit_code == 0, res.stderr
    assert len(list((out / "trials").glob("*/result.json"))) == 2


def test_the_ray_flag_is_the_backend_and_the_address():
    assert ray_overrides(None) == []
    assert ray_overrides("ray://head:10001") == ["search.backend=ray", 'search.ray.address="ray://head:10001"']
    from tunelab.config.load import load_experiment

    exp = load_experiment(None, ray_overrides("ray://head:10001"))
    assert (exp.search.backend, exp.search.ray.address) == ("ray", "ray://head:10001")


def test_a_gpu_fraction_without_a_gpu_is_one_line(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(placement, "local_devices", lambda: [])
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["tune", str(tiny), "--out", str(out), "--quiet", "--set",
                                   "resources.gpus_per_trial=0.5"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --set resources.gpus_per_trial=0.5: 0.5 of a GPU per trial was asked "
                                 "for, but no CUDA device is visible here;")
    assert not out.exists()


def _exp(n_jobs: object = "auto", gpus: float = 0.5, cpus: float = 1):
    return validate_experiment(
        {"search": {"strategy": "grid", "n_jobs": n_jobs, "space": {"train.lr": [0.1, 0.01]}},
         "resources": {"cpus_per_trial": cpus, "gpus_per_trial": gpus}},
        source="test",
    )


def test_local_trial_processes_are_counted_and_pinned_by_the_placement_rule(monkeypatch):
    monkeypatch.setattr(placement, "local_devices", lambda: ["0", "1"])  # two fake GPUs
    monkeypatch.setattr(planning.os, "cpu_count", lambda: 16)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert planning.resolve_jobs(_exp(), units=100) == 4  # 2 devices x 2 halves
    assert planning.resolve_jobs(_exp(n_jobs=8), units=100) == 4  # an explicit count is capped by the devices
    assert planning.resolve_jobs(_exp(gpus=0), units=100) == 16  # no reservation: one per core, as before
    assert planning.resolve_jobs(_exp(gpus=0, cpus=4), units=100) == 4
    pins = local_jobs.pin_devices(_exp(), 4)
    assert pins == ["0", "1", "0", "1"]
    import os

    assert os.environ.get("CUDA_VISIBLE_DEVICES") == "0"  # this process is the first trial process (no CUDA yet)
    assert local_jobs._pinned({"A": "1"}, pins[1]) == {"A": "1", "CUDA_VISIBLE_DEVICES": "1"}
    assert local_jobs._pinned({"A": "1"}, None) == {"A": "1"}


def test_a_staged_search_on_ray_is_refused_in_one_line():
    from tunelab.app.ray_jobs import check_backend
    from tunelab.errors import ConfigError

    exp = validate_experiment({"search": {"strategy": "staged", "backend": "ray"}}, source="test")
    with pytest.raises(ConfigError, match=r"^search.backend: a staged search runs its stage studies one by one"):
        check_backend(exp)


def test_the_storage_proxy_without_grpcio_is_one_line_and_writes_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "grpc", None)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["tune", str(tiny), "--out", str(out), "--quiet", "--set",
                                   "search.storage_proxy=true"])
    assert res.exit_code == 2
    assert res.stderr == ("error: --set search.storage_proxy=true: the gRPC storage proxy needs grpcio, which is "
                          "not installed; pip install 'tunelab[ray]' (or grpcio)\n")
    assert not out.exists()
