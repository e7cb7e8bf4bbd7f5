"""One knob type: a run folder's search.space read back as `config.space_knob.Knob` (runs/knobs.py)."""

from __future__ import annotations

from tunelab.config.space_knob import Knob
from tunelab.diagnose.readings import describe, fixed_space_values, knob_numbers, searched_knobs
from tunelab.diagnose.study import _beyond
from tunelab.runs.knobs import read_knobs
from tunelab.runs.view import RunView


def test_recorded_space_reads_as_config_knobs_leniently():
    knobs = read_knobs({
        "train.lr": {"low": "1e-4", "high": 0.1, "log": True},  # YAML 1.1 keeps 1e-4 a string
        "train.batch_size": {"low": 16, "high": 128},
        "model.dropout": {"values": [0.0, 0.2, 0.5]},
        "train.momentum": [0.9],
        "train.weight_decay": 0.01,
        "train.epochs": [],
        "model.hidden_dims": {"low": "wide", "high": 2},
    })
    assert all(isinstance(k, Knob) for k in knobs)
    by_path = {k.path: k for k in knobs}
    assert set(by_path) == {"train.lr", "train.batch_size", "model.dropout", "train.momentum", "train.weight_decay"}
    lr, batch, dropout = by_path["train.lr"], by_path["train.batch_size"], by_path["model.dropout"]
    assert (lr.kind, lr.low, lr.high, lr.log, lr.name) == ("float", 1e-4, 0.1, True, "lr")
    assert (batch.kind, batch.low, batch.high) == ("int", 16, 128) and isinstance(batch.low, int)
    assert dropout.kind == "categorical" and dropout.values == (0.0, 0.2, 0.5) and dropout.numeric
    assert by_path["train.momentum"].kind == "fixed" and by_path["train.weight_decay"].values == (0.01,)
    assert describe(lr) == "0.0001..0.1 (log)" and describe(dropout) == "[0, 0.2, 0.5]"
    assert knob_numbers(dropout) == [0.0, 0.2, 0.5]


def test_rules_see_searched_and_fixed_knobs_of_one_type(build):
    b = build().experiment(space={"train.lr": [0.01, 0.1], "train.momentum": [0.9], "model.dropout": 0.1})
    run = RunView(b.root)
    assert [k.path for k in searched_knobs(run)] == ["train.lr"]
    assert fixed_space_values(run) == {"train.momentum": 0.9, "model.dropout": 0.1}


def test_an_integer_range_is_widened_by_an_integer():
    [batch] = read_knobs({"train.batch_size": {"low": 16, "high": 128}})
    beyond = _beyond(batch, "high")
    assert beyond == 184 and isinstance(beyond, int)  # before one knob type the bounds were floats: 184.0
