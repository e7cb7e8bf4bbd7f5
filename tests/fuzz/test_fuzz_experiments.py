"""Generated experiment files, valid and broken: each either trains or fails with exit 2 and one
line, never a traceback, and never leaves a half-written run folder."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tunelab.app.train
import tunelab.app.tune
from tunelab.cli import app

BASE = {
    "name": "fuzz",
    "data": {"name": "toy_2d", "val_fraction": 0.2, "split_seed": 0},
    "model": {"family": "mlp", "hidden_dims": [8], "dropout": 0.0, "activation": "relu"},
    "train": {"epochs": 2, "batch_size": "full", "optimizer": "sgd", "lr": 0.1, "seed": 1,
              "early_stopping": {"patience": None}, "checkpoints": {"keep_last": 1}},
    "search": {"strategy": "none"},
    "final": {"enabled": False},
}
PATHS = [
    ("name",), ("data",), ("data", "name"), ("data", "val_fraction"), ("data", "split_seed"), ("data", "features"),
    ("model",), ("model", "family"), ("model", "hidden_dims"), ("model", "dropout"), ("model", "activation"),
    ("model", "layer_norm"), ("model", "num_layers"), ("train",), ("train", "epochs"), ("train", "batch_size"),
    ("train", "optimizer"), ("train", "lr"), ("train", "momentum"), ("train", "seed"), ("train", "loss"),
    ("train", "scheduler"), ("train", "max_grad_norm"), ("train", "metrics"), ("train", "threads"),
    ("train", "early_stopping", "patience"), ("train", "checkpoints", "keep_last"), ("task",), ("final",),
    ("unknown_section",), ("train", "unknown_knob"),
]
WEIRD = st.one_of(
    st.sampled_from([-1, 0, 1, 2, 3, 10**12, -(10**12), 0.5, 1e308, -1e-9, math.nan, math.inf, True, False, None,
                     "", "ten", "relu", "adam", "mse", "cnn", "full", "ü😀\u202e", "<script>", [], {}, [8, 4],
                     [[1, 2]], {"a": {"b": {"c": {"d": {}}}}}, [1, [2, [3, [4]]]], ["accuracy"]]),
    st.text(max_size=12),
    st.integers(-5, 5),
)
MUTATION = st.tuples(st.sampled_from(PATHS), st.one_of(st.just("<delete>"), WEIRD))


def _mutate(base: dict, mutations: list) -> dict:
    exp = copy.deepcopy(base)
    for path, value in mutations:
        node = exp
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if value == "<delete>":
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return exp


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    # The report is tested elsewhere; here every example must stay cheap. `train` (every example
    # here) reaches the report through tunelab.app.train's own name for it, so both are replaced.
    for module in (tunelab.app.tune, tunelab.app.train):
        monkeypatch.setattr(module, "write_evidence", lambda *_args, **_kwargs: None)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_generated_experiment_trains_or_fails_with_one_line(tmp_path_factory, mutations):
    work = tmp_path_factory.mktemp("fuzz")
    exp_file = work / "exp.yaml"
    exp_file.write_text(yaml.safe_dump(_mutate(BASE, mutations), allow_unicode=True), encoding="utf-8")
    out = work / "run"
    result = CliRunner().invoke(app, ["train", str(exp_file), "--out", str(out), "--quiet"])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback for {mutations}: {result.exception!r}"
    )
    if result.exit_code == 0:
        assert list(Path(out).glob("trials/*/result.json")), "a finished run has its result"
        return
    assert result.exit_code == 2, (mutations, result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (mutations, result.stderr)
    assert not out.exists(), f"half-written run folder for {mutations}"
