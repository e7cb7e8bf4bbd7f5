"""The one winner-selection function: ties on the objective go to the lower val_loss, then the smaller
model, then the sorted parameters — never to the trial number, so a crash-retry cannot change it."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial

from tunelab.search.selection import best_trial, choose, tie_attrs, winner_line

DIST = {"lr": CategoricalDistribution([0.001, 0.01, 0.1]), "hidden_dims": CategoricalDistribution(["[32]", "[64]"])}


def study_of(rows: list[tuple[dict, float, dict]], direction: str = "maximize") -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for params, value, attrs in rows:
        study.add_trial(create_trial(params=params, distributions={k: DIST[k] for k in params}, value=value,
                                     user_attrs={"outcome": "complete", **attrs}))
    return study


ROWS = [
    ({"lr": 0.001, "hidden_dims": "[32]"}, 1.0, {"tie_val_loss": 0.172}),   # first found, still under-trained
    ({"lr": 0.01, "hidden_dims": "[64]"}, 1.0, {"tie_val_loss": 0.0002}),
    ({"lr": 0.1, "hidden_dims": "[32]"}, 0.9, {"tie_val_loss": 0.0001}),    # lower loss, but not tied
]


def test_a_tie_on_the_objective_goes_to_the_lower_val_loss():
    choice = choose(study_of(ROWS), "val_accuracy")
    assert choice.number == 1 and choice.tied == (1, 0)
    assert "2 trials tied" in choice.rule and "validation loss" in choice.rule
    assert best_trial(study_of(ROWS)).params == {"lr": 0.01, "hidden_dims": "[64]"}


def test_the_winner_does_not_depend_on_trial_order():
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        assert best_trial(study_of([ROWS[i] for i in order])).params == {"lr": 0.01, "hidden_dims": "[64]"}


def test_without_losses_the_smaller_model_then_the_params_decide_whatever_the_numbering():
    rows = [({"lr": 0.01, "hidden_dims": "[64]"}, 1.0, {}), ({"lr": 0.1, "hidden_dims": "[32]"}, 1.0, {}),
            ({"lr": 0.001, "hidden_dims": "[32]"}, 1.0, {})]
    winners = {tuple(sorted(best_trial(study_of(rows[::step])).params.items())) for step in (1, -1)}
    assert winners == {(("hidden_dims", "[32]"), ("lr", 0.001))}


def test_seed_noise_widens_the_tie():
    rows = [({"lr": 0.01}, 0.80, {"seed_values": [0.7, 0.9], "value_std": 0.14, "tie_val_loss": 0.5}),
            ({"lr": 0.1}, 0.75, {"seed_values": [0.7, 0.8], "value_std": 0.07, "tie_val_loss": 0.3})]
    choice = choose(study_of(rows), "val_accuracy")
    assert choice.number == 1 and "seed spread" in choice.rule


def test_minimize_and_no_complete_trial():
    rows = [({"lr": 0.01}, 0.5, {}), ({"lr": 0.1}, 0.4, {})]
    assert choose(study_of(rows, "minimize")).number == 1
    empty = optuna.create_study()
    assert choose(empty).winner is None and winner_line(choose(empty), "auto").startswith("Winner: none")


def test_tie_attrs_average_the_seeds_and_skip_nan():
    attrs = tie_attrs([{"val_loss": 0.2}, {"val_loss": 0.4}, {"val_loss": float("nan")}])
    assert abs(attrs["tie_val_loss"] - 0.3) < 1e-12
    assert tie_attrs([{}]) == {}
