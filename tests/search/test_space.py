"""Search spaces: parsing errors, grid and ablation points, Optuna suggestions and encodings."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from tunelab.config.load import load_experiment
from tunelab.config.space import (
    Knob,
    ablation_points,
    apply_params,
    decode_params,
    distributions,
    encode_params,
    fixed_params,
    grid_points,
    grid_search_space,
    parse_space,
    searched,
    space_size,
    suggest,
)
from tunelab.errors import ConfigError


def experiment(space: dict[str, Any], strategy: str = "tpe", **sections: Any):
    return load_experiment(raw={**sections, "search": {"strategy": strategy, "space": space}})


# --------------------------------------------------------------------------- errors

BAD_SPACES = [
    ({"train.lrr": [0.1]}, "train.lrr", "did you mean train.lr"),
    ({"lr": [0.1]}, "lr", "did you mean train.lr?"),
    ({"train.lr": []}, "train.lr", "empty list"),
    ({"train.lr": {"low": 0.1, "high": 0.01}}, "train.lr", "low must be <= high, got low=0.1, high=0.01"),
    ({"train.lr": {"low": 0, "high": 0.1, "log": True}}, "train.lr", "log scale needs low > 0, got low=0"),
    ({"model.dropout": {"low": 0.0, "high": 0.5, "step": 0}}, "model.dropout", "step must be > 0, got step=0"),
    ({"train.lr": {"low": 0.001, "high": 0.1, "log": True, "step": 0.01}}, "train.lr", "log and step cannot"),
    ({"train.lr": {"low": 0.001, "hihg": 0.1}}, "train.lr", "unknown key 'hihg' (did you mean high?)"),
    ({"model.activation": ["relu", "swish"]}, "model.activation", "value 'swish' is invalid"),
    ({"train.momentum": {"values": [0.9], "when": {"train.optimzer": "sgd"}}}, "train.momentum", "train.optimizer"),
    ({"model.family": ["mlp", "vit"]}, "model.family", "unknown family 'vit'"),
    ({"model.channels": [[8, 16]]}, "model.channels", "model family mlp has no key channels"),
    ({"train.early_stopping": [1, 2]}, "train.early_stopping", "is a section"),
    ({"search.n_trials": [1, 2]}, "search.n_trials", "search cannot be searched"),
    ({"model.hidden_dim": {"low": 16.0, "high": 64.0}}, "model.hidden_dim", "expected an integer"),
    ({"train.lr": [0.1, 0.1]}, "train.lr", "listed twice"),
    ({"train.lr": {"low": "a", "high": 0.1}}, "train.lr", "low must be a number"),
    ({"model.hidden_dims": [32, 64]}, "model.hidden_dims", "value 32 is invalid"),
    (
        {"train.momentum": {"values": [0.9], "when": {"train.optimizer": "nadam"}}, "train.optimizer": ["sgd", "adam"]},
        "train.momentum",
        "never searched",
    ),
    ({"train.lr": {"low": 0.001}}, "train.lr", "a range needs low and high"),
]


@pytest.mark.parametrize(
    ("space", "path", "fragment"), BAD_SPACES, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD_SPACES)]
)
def test_bad_space_is_one_line_naming_the_key_path(space: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(experiment(space))
    line = info.value.one_line()
    assert info.value.key == f"search.space.{path}"
    assert line.startswith(f"search.space.{path}: ")
    assert fragment in line
    assert "\n" not in str(info.value)


def test_low_above_high_message_is_exact() -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(experiment({"train.lr": {"low": 0.1, "high": 0.01}}))
    assert str(info.value) == "search.space.train.lr: low must be <= high, got low=0.1, high=0.01"


def test_grid_with_continuous_range_is_rejected_but_lr_sweep_takes_it() -> None:
    space = {"model.dropout": {"low": 0.0, "high": 0.5}}
    with pytest.raises(ConfigError) as info:
        parse_space(experiment(space, "grid"))
    assert str(info.value) == "search.space.model.dropout: grid needs a list of values, got a range {low, high}"
    with pytest.raises(ConfigError, match="ablation needs a list"):
        parse_space(experiment(space, "ablation"))
    (knob,) = parse_space(experiment({"train.lr": {"low": 1e-5, "high": 1.0, "log": True}}, "lr_sweep"))
    assert (knob.kind, knob.low, knob.high, knob.log) == ("float", 1e-5, 1.0, True)


def test_searching_strategy_needs_a_searched_knob() -> None:
    with pytest.raises(ConfigError, match=r"^search\.space: strategy grid needs at least one"):
        parse_space(experiment({"train.weight_decay": 0.01}, "grid"))
    assert parse_space(experiment({}, "none")) == []


def test_value_of_a_conditional_knob_is_checked_with_its_condition_holding() -> None:
    # nesterov needs sgd with momentum > 0; checked alone on an adam base it would fail.
    space = {
        "train.optimizer": ["sgd", "adam"],
        "train.momentum": {"values": [0.9], "when": {"train.optimizer": "sgd"}},
        "train.nesterov": {"values": [True, False], "when": {"train.momentum": 0.9}},
    }
    assert [k.path for k in parse_space(experiment(space))] == list(space)


# --------------------------------------------------------------------------- parsing


def test_kinds_names_and_values_are_parsed() -> None:
    space = {
        "train.lr": ["1e-3", 0.01],  # PyYAML reads 1e-3 as a string
        "model.hidden_dims": [[32, 32], [64, 64]],
        "model.dropout": {"low": 0.0, "high": 0.6, "step": 0.3},
        "train.batch_size": {"low": 16, "high": 128, "log": True},
        "train.early_stopping.patience": [3, 5],
        "train.weight_decay": 0.01,
    }
    knobs = parse_space(experiment(space))
    by_path = {k.path: k for k in knobs}
    assert by_path["train.lr"].values == (0.001, 0.01)
    assert by_path["model.hidden_dims"].kind == "categorical"
    assert by_path["model.dropout"].kind == "float" and by_path["model.dropout"].step == 0.3
    assert by_path["train.batch_size"].kind == "int" and by_path["train.batch_size"].log
    assert [k.name for k in knobs] == ["lr", "hidden_dims", "dropout", "batch_size", "patience", "weight_decay"]
    assert fixed_params(knobs) == {"train.weight_decay": 0.01}
    assert [k.path for k in searched(knobs)] == list(space)[:-1]
    assert space_size(knobs) == 2 * 2 * 3 * 113 * 2


def test_knobs_sharing_a_last_component_use_full_paths() -> None:
    knobs = parse_space(experiment({"train.early_stopping.min_delta": [0.0, 0.1], "train.lr": [0.1]}))
    assert [k.name for k in knobs] == ["min_delta", "lr"]
    exp = load_experiment(raw={"model": {"family": "python", "builder": "m:f"}})
    space = {"model.params.dropout": [0.1], "train.lr": [0.1], "model.params.lr": [1, 2]}
    raw = {**exp.model_dump(mode="json"), "search": {"strategy": "tpe", "space": space}}
    knobs = parse_space(load_experiment(raw=raw))
    assert [k.name for k in knobs] == ["dropout", "train.lr", "model.params.lr"]


def test_knob_is_ordered_after_the_knob_its_condition_reads() -> None:
    space = {"train.momentum": {"values": [0.0, 0.9], "when": {"train.optimizer": "sgd"}}, "train.optimizer": ["sgd"]}
    assert [k.path for k in parse_space(experiment(space))] == ["train.optimizer", "train.momentum"]


# --------------------------------------------------------------------------- grid


def test_seed_000_grid_has_27_distinct_points() -> None:
    space = {
        "train.lr": [0.01, 0.001, 0.0001],
        "model.hidden_dim": [32, 64, 128],
        "model.dropout": {"low": 0.0, "high": 0.6, "step": 0.3},
    }
    exp = experiment(space, "grid", model={"num_layers": 2})
    knobs = parse_space(exp)
    points = grid_points(knobs, exp)
    assert len(points) == 27 == space_size(knobs)
    assert len({tuple(p.items()) for p in points}) == 27
    assert points[0] == {"train.lr": 0.01, "model.hidden_dim": 32, "model.dropout": 0.0}
    assert points[1]["model.dropout"] == 0.3 and points[-1]["train.lr"] == 0.0001  # first knob slowest
    assert {p["model.dropout"] for p in points} == {0.0, 0.3, 0.6}
    assert grid_search_space(knobs)["dropout"] == [0.0, 0.3, 0.6]


def test_grid_crosses_a_conditional_knob_only_where_its_condition_holds() -> None:
    space = {
        "train.optimizer": ["sgd", "adam"],
        "train.momentum": {"values": [0, 0.9], "when": {"train.optimizer": "sgd"}},
        "train.weight_decay": 0.01,
    }
    exp = experiment(space, "grid")
    knobs = parse_space(exp)
    assert grid_points(knobs, exp) == [
        {"train.optimizer": "sgd", "train.momentum": 0, "train.weight_decay": 0.01},
        {"train.optimizer": "sgd", "train.momentum": 0.9, "train.weight_decay": 0.01},
        {"train.optimizer": "adam", "train.weight_decay": 0.01},
    ]
    assert space_size(knobs, exp) == 3


def test_condition_on_a_key_outside_the_space_reads_the_base_value() -> None:
    space = {"train.lr": [0.1, 0.01], "train.momentum": {"values": [0.5, 0.9], "when": {"train.optimizer": "sgd"}}}
    adam = experiment(space, "grid")
    assert grid_points(parse_space(adam), adam) == [{"train.lr": 0.1}, {"train.lr": 0.01}]
    sgd = experiment(space, "grid", train={"optimizer": "sgd"})
    assert len(grid_points(parse_space(sgd), sgd)) == 4


def test_int_range_is_expanded_for_a_grid() -> None:
    exp = experiment({"model.num_layers": {"low": 1, "high": 3}}, "grid")
    assert grid_points(parse_space(exp), exp) == [{"model.num_layers": n} for n in (1, 2, 3)]


def test_searching_model_family_conditions_family_specific_knobs() -> None:
    space = {"model.family": ["mlp", "cnn"], "model.hidden_dim": [32, 64], "model.dropout": [0.0, 0.5]}
    exp = experiment(space, "grid")
    knobs = parse_space(exp)
    assert knobs[1].when == {"model.family": ("mlp",)}
    points = grid_points(knobs, exp)
    assert len(points) == 6  # mlp: 2 x 2, cnn: 2
    assert {"model.family": "cnn", "model.dropout": 0.5} in points
    for point in points:
        assert apply_params(exp, point).model.family == point["model.family"]


# --------------------------------------------------------------------------- ablation


@pytest.mark.parametrize(
    "space",
    [
        {"train.lr": [0.001, 0.01, 0.1]},
        {"train.lr": [0.001, 0.01], "model.dropout": [0.0, 0.2, 0.4]},
        {"train.lr": [0.001, 0.01, 0.1], "model.dropout": [0.0, 0.5], "model.activation": ["relu", "gelu", "tanh"]},
    ],
)
def test_ablation_runs_the_default_once_then_one_factor_at_a_time(space: dict[str, list]) -> None:
    exp = experiment({**space, "train.weight_decay": 0.01}, "ablation")  # every list includes the default
    knobs = parse_space(exp)
    points = ablation_points(knobs, exp)
    assert len(points) == 1 + sum(len(v) - 1 for v in space.values())
    defaults = {"train.lr": 0.001, "model.dropout": 0.0, "model.activation": "relu"}
    assert points[0] == {p: defaults[p] for p in space} | {"train.weight_decay": 0.01}
    assert len({tuple(map(str, p.items())) for p in points}) == len(points)
    for point in points[1:]:
        changed = [p for p in space if point[p] != points[0][p]]
        assert len(changed) == 1


def test_ablation_runs_every_value_of_a_knob_whose_default_is_not_listed() -> None:
    exp = experiment({"train.lr": [0.01, 0.1], "model.hidden_dims": [[32, 32], [64, 64]]}, "ablation")
    knobs = parse_space(exp)
    points = ablation_points(knobs, exp)
    assert points[0] == {"train.lr": 0.001, "model.hidden_dims": None}
    assert len(points) == 1 + 2 + 2
    # The default is added to the knob's choices so the enqueued default fits the distribution.
    assert knobs[0].values == (0.01, 0.1, 0.001)


def test_ablation_switches_on_a_conditional_knob_at_its_base_value() -> None:
    space = {
        "train.optimizer": ["adam", "sgd"],
        "train.momentum": {"values": [0.5, 0.9], "when": {"train.optimizer": "sgd"}},
    }
    exp = experiment(space, "ablation")
    points = ablation_points(parse_space(exp), exp)
    assert points == [{"train.optimizer": "adam"}, {"train.optimizer": "sgd", "train.momentum": 0.0}]


def test_ablation_points_enqueue_into_a_study() -> None:
    exp = experiment({"train.lr": [0.001, 0.01], "model.hidden_dims": [[8], [16, 16]]}, "ablation")
    knobs = parse_space(exp)
    points = ablation_points(knobs, exp)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for point in points:
        study.enqueue_trial(encode_params(knobs, point))
    seen: list[dict[str, Any]] = []
    study.optimize(lambda t: seen.append(suggest(t, knobs, exp)) or 0.0, n_trials=len(points))
    assert seen == points
    assert [decode_params(knobs, t.params) for t in study.trials] == points


# --------------------------------------------------------------------------- suggest


def test_suggest_with_a_fixed_trial_decodes_lists() -> None:
    space = {
        "train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
        "model.hidden_dims": [[32, 32], [64, 64]],
        "train.batch_size": {"low": 16, "high": 128},
        "train.weight_decay": 0.01,
    }
    exp = experiment(space)
    knobs = parse_space(exp)
    params = {"train.lr": 0.01, "model.hidden_dims": [64, 64], "train.batch_size": 32}
    encoded = encode_params(knobs, params)
    assert encoded == {"lr": 0.01, "hidden_dims": "[64, 64]", "batch_size": 32}
    result = suggest(optuna.trial.FixedTrial(encoded), knobs, exp)
    assert result == {**params, "train.weight_decay": 0.01}
    assert decode_params(knobs, encoded) == result


def test_suggest_skips_a_knob_whose_condition_fails() -> None:
    space = {
        "train.optimizer": ["sgd", "adam"],
        "train.momentum": {"values": [0.5, 0.9], "when": {"train.optimizer": "sgd"}},
    }
    exp = experiment(space)
    knobs = parse_space(exp)
    assert suggest(optuna.trial.FixedTrial({"optimizer": "adam"}), knobs, exp) == {"train.optimizer": "adam"}
    sgd = suggest(optuna.trial.FixedTrial({"optimizer": "sgd", "momentum": 0.9}), knobs, exp)
    assert sgd == {"train.optimizer": "sgd", "train.momentum": 0.9}


def test_suggest_in_a_tpe_study_round_trips_lists_of_lists() -> None:
    space = {
        "train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
        "model.hidden_dims": [[32, 32], [64, 64], [128]],
        "model.dropout": {"low": 0.0, "high": 0.5, "step": 0.25},
        "train.optimizer": ["sgd", "adam"],
        "train.momentum": {"values": [0.0, 0.9], "when": {"train.optimizer": "sgd"}},
    }
    exp = experiment(space)
    knobs = parse_space(exp)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    configs: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, knobs, exp)
        configs.append(params)
        built = apply_params(exp, params)
        return float(sum(built.model.resolved_hidden_dims())) * built.train.lr

    study.optimize(objective, n_trials=5)
    assert len(configs) == 5
    for trial, params in zip(study.trials, configs, strict=True):
        assert params["model.hidden_dims"] in ([32, 32], [64, 64], [128])
        assert isinstance(trial.params["hidden_dims"], str)
        assert ("train.momentum" in params) == (params["train.optimizer"] == "sgd")
        assert decode_params(knobs, trial.params) == params
    assert set(distributions(knobs)) == {"lr", "hidden_dims", "dropout", "optimizer", "momentum"}


# --------------------------------------------------------------------------- apply


def test_apply_params_sets_nested_keys_and_returns_a_new_experiment() -> None:
    exp = experiment({"train.lr": [0.1]})
    params = {"train.lr": 0.05, "model.hidden_dims": [16, 8], "train.early_stopping.patience": 4}
    new = apply_params(exp, params)
    assert new.train.lr == 0.05 and new.model.hidden_dims == [16, 8] and new.train.early_stopping.patience == 4
    assert exp.train.lr == 0.001  # the base is untouched
    assert apply_params(new, {}) == new


def test_apply_params_switches_model_family_dropping_foreign_keys() -> None:
    exp = experiment({}, "none", model={"family": "mlp", "hidden_dim": 32, "dropout": 0.2})
    cnn = apply_params(exp, {"model.family": "cnn", "model.kernel_size": 5})
    assert cnn.model.family == "cnn" and cnn.model.kernel_size == 5 and cnn.model.dropout == 0.2
    assert not hasattr(cnn.model, "hidden_dim")


def test_apply_params_rejects_an_invalid_value() -> None:
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        apply_params(experiment({}, "none"), {"model.dropout": 2.0})


def test_knob_values_are_plain_data() -> None:
    knob = Knob(path="train.lr", name="lr", kind="categorical", values=(0.1, 0.01))
    assert knob == Knob(path="train.lr", name="lr", kind="categorical", values=(0.1, 0.01))
    assert not knob.continuous and knob.when == {}
