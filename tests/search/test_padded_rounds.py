"""A TPE round of MLPs that differ in hidden width trains as one padded stack."""

from __future__ import annotations

from pathlib import Path

import torch

import tunelab
from tunelab.config.load import load_experiment
from tunelab.runs.records import read_json, read_jsonl


def _one_layer_mlps(name: str, search: dict) -> object:
    """A diabetes study of one-hidden-layer MLPs whose width is searched."""
    return load_experiment(None, raw={
        "name": name,
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "num_layers": 1},
        "train": {"epochs": 2, "batch_size": 32, "loss": "huber"},
        "final": {"enabled": False},
        "search": search,
    })


def test_a_round_of_mixed_widths_trains_as_one_padded_stack(tmp_path: Path) -> None:
    exp = _one_layer_mlps("widths", {"strategy": "tpe", "n_trials": 6, "batch_size": 6, "n_jobs": 1, "sampler_seed": 1,
                   "space": {"model.hidden_dim": [32, 48, 64], "train.lr": {"low": 1e-4, "high": 1e-2, "log": True}}})
    result = tunelab.tune(exp, out=tmp_path, write_outputs=False)
    assert result.n_complete == 6
    times, widths = set(), set()
    for folder in (tmp_path / "trials").iterdir():
        times.add(tuple(r["epoch_time_s"] for r in read_jsonl(folder / "metrics.jsonl")))  # one group's shared time
        width = read_json(folder / "params.json")["params"]["model.hidden_dim"]
        widths.add(width)
        best = torch.load(folder / "checkpoints" / "best.pt", weights_only=False)["model"]
        assert [tuple(v.shape) for v in best.values()] == [(width, 10), (width,), (1, width), (1,)]
    assert len(times) == 1 and len(widths) >= 2
    assert (tmp_path / "rounds.log").read_text(encoding="utf-8") == (
        f"round 1: 6 trials; vectorized groups of 6 (padded: {len(widths)} shapes, model.hidden_dim); 0 alone\n")


def test_a_grid_of_widths_queues_and_trains_as_one_padded_group(tmp_path: Path) -> None:
    exp = _one_layer_mlps("grid_widths", {"strategy": "grid", "n_jobs": 1,
                                          "space": {"model.hidden_dim": [32, 48, 64], "train.lr": [1e-3, 3e-3]}})
    result = tunelab.tune(exp, out=tmp_path, write_outputs=False)
    assert result.n_complete == 6
    times = {tuple(r["epoch_time_s"] for r in read_jsonl(folder / "metrics.jsonl"))
             for folder in (tmp_path / "trials").iterdir()}
    assert len(times) == 1  # one group's epoch time, shared by its six members


def test_a_grid_of_two_depths_trains_as_one_stack_with_each_members_own_layers(tmp_path: Path) -> None:
    exp = load_experiment(None, raw={
        "name": "depths", "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dim": 32, "hidden_dim_ratio": 0.5},
        "train": {"epochs": 2, "batch_size": 32, "loss": "huber"}, "final": {"enabled": False},
        "search": {"strategy": "grid", "n_jobs": 1, "space": {
            "model.num_layers": [1, 2], "train.lr": [1e-3, 3e-3, 1e-2, 3e-2]}},
    })
    result = tunelab.tune(exp, out=tmp_path, write_outputs=False)
    assert result.n_complete == 8
    times = set()
    for folder in (tmp_path / "trials").iterdir():
        times.add(tuple(r["epoch_time_s"] for r in read_jsonl(folder / "metrics.jsonl")))
        layers = read_json(folder / "params.json")["params"]["model.num_layers"]
        best = torch.load(folder / "checkpoints" / "best.pt", weights_only=False)["model"]
        shapes = [(32, 10), (32,), (16, 32), (16,), (1, 16), (1,)] if layers == 2 else [(32, 10), (32,), (1, 32), (1,)]
        assert [tuple(v.shape) for v in best.values()] == shapes
    assert len(times) == 1  # one stack: the group's epoch time, shared by its eight members
