"""Study rules: seed spread vs margin, best on the edge, failed share, still improving, too few trials."""

from __future__ import annotations

from tunelab.diagnose.study import best_on_edge, failed_share, seed_spread, still_improving, too_few_trials
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.runs.view import RunView

LR_GRID = {"train.lr": [0.001, 0.01, 0.1]}


def grid(build, space, values, strategy="grid", **exp) -> RunView:
    """One trial per (params, value); the best is picked by the history like Optuna would."""
    b = build().experiment(strategy=strategy, space=space, **exp)
    for i, (params, value) in enumerate(values):
        b.trial(i, params=params, value=value)
    b.history()
    return RunView(b.root)


# --------------------------------------------------------------------------- seed spread


def seeded(build, first, second) -> RunView:
    b = build().experiment(space=LR_GRID)
    b.trial(0, params={"train.lr": 0.01}, value=sum(first) / 3, seed_values=first)
    b.trial(1, params={"train.lr": 0.1}, value=sum(second) / 3, seed_values=second)
    return RunView(b.history().root)


def test_seed_std_larger_than_margin_is_flagged(build):
    [f] = seed_spread(seeded(build, [0.20, 0.23, 0.17], [0.21, 0.22, 0.20]), TH)
    assert f.scope == "study" and f.trials == [0, 1]
    assert "by 0.01, less than the seed std 0.03 (3 seeds)" in f.evidence
    assert "search.seeds=5" in f.next_experiment


def test_margin_larger_than_seed_std_is_trusted(build):
    assert seed_spread(seeded(build, [0.20, 0.201, 0.199], [0.30, 0.301, 0.299]), TH) == []


def test_single_seed_studies_are_not_judged_for_seed_spread(build):
    assert seed_spread(grid(build, LR_GRID, [({"train.lr": 0.01}, 0.2), ({"train.lr": 0.1}, 0.21)]), TH) == []


# --------------------------------------------------------------------------- edge


def test_best_at_the_largest_listed_value_says_widen(build):
    run = grid(build, LR_GRID, [({"train.lr": 0.001}, 0.7), ({"train.lr": 0.01}, 0.5), ({"train.lr": 0.1}, 0.3)])
    [f] = best_on_edge(run, TH)
    assert f.severity == "warning" and f.trials == [2]
    assert f.evidence == "best lr=0.1 is the largest value searched (lr in [0.001, 0.01, 0.1])"
    assert f.next_experiment.startswith("widen train.lr beyond 0.1 (e.g. include 1) and search again")
    assert f.space == {"train.lr": [0.001, 0.01, 0.1, 1.0]}


def test_best_inside_the_list_is_not_on_the_edge(build):
    run = grid(build, LR_GRID, [({"train.lr": 0.001}, 0.7), ({"train.lr": 0.01}, 0.2), ({"train.lr": 0.1}, 0.3)])
    assert best_on_edge(run, TH) == []


def test_best_near_the_low_end_of_a_log_range(build):
    space = {"train.lr": {"low": 1e-5, "high": 1e-1, "log": True}}
    run = grid(build, space, [({"train.lr": 1.2e-5}, 0.2), ({"train.lr": 1e-3}, 0.3)], strategy="tpe")
    [f] = best_on_edge(run, TH)
    assert "smallest" in f.evidence and "1e-05..0.1 (log)" in f.evidence
    assert "below 1.2e-05 (e.g. include 1e-06)" in f.next_experiment


def test_zero_dropout_is_a_floor_not_an_edge(build):
    space = {"model.dropout": [0.0, 0.3, 0.6]}
    run = grid(build, space, [({"model.dropout": 0.0}, 0.2), ({"model.dropout": 0.3}, 0.3)])
    assert best_on_edge(run, TH) == []


def test_two_values_are_too_few_for_an_edge(build):
    space = {"train.lr": [0.01, 0.1]}
    assert best_on_edge(grid(build, space, [({"train.lr": 0.1}, 0.2), ({"train.lr": 0.01}, 0.3)]), TH) == []


def test_categorical_knob_has_no_edge(build):
    space = {"train.optimizer": ["sgd", "adam", "adamw"]}
    run = grid(build, space, [({"train.optimizer": "adamw"}, 0.2), ({"train.optimizer": "sgd"}, 0.3)])
    assert best_on_edge(run, TH) == []


# --------------------------------------------------------------------------- failed share


def test_many_diverged_trials_say_narrow_to_where_trials_finish(build):
    b = build().experiment(space={"train.lr": [0.001, 0.01, 0.1, 1.0, 10.0]})
    for i, lr in enumerate([0.001, 0.01, 0.1]):
        b.trial(i, params={"train.lr": lr}, value=0.5 - 0.1 * i)
    for i, lr in enumerate([1.0, 10.0], start=3):
        b.trial(i, params={"train.lr": lr}, outcome="diverged", reason="train_loss=nan at epoch 2")
    [f] = failed_share(RunView(b.history().root), TH)
    assert f.trials == [3, 4]
    assert f.evidence == "2 of 5 trials (40% > 30%) diverged (2) or were pruned (0)"
    assert f.next_experiment == "narrow lr to 0.001..0.1 (where the finished trials lie)"


def test_few_failures_are_fine(build):
    b = build().experiment(space=LR_GRID)
    for i in range(9):
        b.trial(i, params={"train.lr": 0.01}, value=0.3)
    b.trial(9, params={"train.lr": 0.1}, outcome="pruned")
    assert failed_share(RunView(b.history().root), TH) == []


# --------------------------------------------------------------------------- still improving


def sampler_study(build, values, strategy="tpe", space=None) -> RunView:
    space = space or {"train.lr": {"low": 1e-4, "high": 1.0, "log": True}}
    return grid(build, space, [({"train.lr": 0.01 * (i + 1)}, v) for i, v in enumerate(values)], strategy=strategy)


def test_best_found_in_the_last_trials_says_raise_the_budget(build):
    values = [0.5, 0.45, 0.44, 0.43, 0.43, 0.42, 0.42, 0.42, 0.41, 0.30]
    [f] = still_improving(sampler_study(build, values), TH)
    assert f.trials == [9]
    assert "0.42→0.3 (28.6% better)" in f.evidence and "within the last 2 of 10 trials" in f.evidence
    assert "--n-trials 20" in f.next_experiment


def test_a_plateau_at_the_end_is_not_still_improving(build):
    values = [0.5, 0.3, 0.31, 0.32, 0.33, 0.35, 0.34, 0.33, 0.32, 0.301]
    assert still_improving(sampler_study(build, values), TH) == []


def test_a_tiny_gain_at_the_end_is_not_still_improving(build):
    values = [0.5, 0.3, 0.31, 0.32, 0.33, 0.35, 0.34, 0.33, 0.32, 0.2999]
    assert still_improving(sampler_study(build, values), TH) == []


def test_grid_order_means_nothing_for_still_improving(build):
    values = [0.5, 0.45, 0.44, 0.43, 0.43, 0.42, 0.42, 0.42, 0.41, 0.30]
    assert still_improving(sampler_study(build, values, strategy="grid", space=LR_GRID), TH) == []


# --------------------------------------------------------------------------- too few trials

THREE_KNOBS = {
    "train.lr": {"low": 1e-4, "high": 1.0, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "train.batch_size": [16, 32, 64],
    "train.optimizer": "adam",
}


def test_twelve_trials_for_three_knobs_are_too_few(build):
    [f] = too_few_trials(sampler_study(build, [0.3] * 12, space=THREE_KNOBS), TH)
    assert f.evidence == "12 trials for 3 searched knobs (lr, dropout, batch_size): fewer than 30 (10 per knob)"
    assert "--n-trials 30" in f.next_experiment


def test_thirty_trials_for_three_knobs_are_enough(build):
    assert too_few_trials(sampler_study(build, [0.3] * 30, space=THREE_KNOBS), TH) == []


def test_exhaustive_strategies_are_never_too_short(build):
    for strategy in ("grid", "ablation", "lr_sweep"):
        run = sampler_study(build, [0.3] * 3, strategy=strategy, space={"train.lr": [0.01, 0.1, 1.0]})
        assert too_few_trials(run, TH) == []
