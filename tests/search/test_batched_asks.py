"""Model-based samplers ask in rounds (`search.batch_size`): the same trials whoever asks them."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from pydantic import ValidationError

from tunelab.app.tune import tune
from tunelab.config.schema import Experiment
from tunelab.config.space import parse_space
from tunelab.runs.layout import RunLayout
from tunelab.search.planning import batch_size
from tunelab.search.rounds import ROUND_ATTR, packing_line, round_seed, rounds_for, share_processes
from tunelab.search.study_run import MAX_DRY_ASKS

BASE = {
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [8]},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.003},
    "final": {"enabled": False},
}
SPACE = {
    "train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "model.hidden_dims": [[8], [16]],
}


def experiment(name: str, **search: object) -> Experiment:
    return Experiment.model_validate({"name": name, **BASE, "search": {"space": SPACE, **search}})


def trials(out: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")
    return sorted(study.get_trials(), key=lambda t: t.number)


def test_auto_fills_the_machine_but_keeps_rounds_to_learn_from() -> None:
    tpe = experiment("a", strategy="tpe", n_trials=64, n_jobs=2)
    assert batch_size(tpe, 64) == 16  # 32 members x 2 processes, capped at a quarter of the budget
    assert batch_size(experiment("a", strategy="tpe", n_trials=400, n_jobs=2), 400) == 64
    assert batch_size(experiment("a", strategy="tpe", n_jobs=3, vectorize="off"), 64) == 3
    assert batch_size(experiment("a", strategy="tpe", pruner="median"), 64) == 1  # a pruner compares one by one
    assert batch_size(experiment("a", strategy="random"), 64) == 1  # random and qmc keep their own batching
    assert batch_size(experiment("a", strategy="gp", batch_size=5, pruner="median"), 64) == 5
    assert round_seed(0, 1) != round_seed(0, 2) != round_seed(1, 1)


def test_batch_size_out_of_range_is_one_line() -> None:
    with pytest.raises(ValidationError, match=r"batch_size must be 1\.\.1024 or auto, got 0"):
        experiment("a", strategy="tpe", batch_size=0)


def test_packing_line_names_groups_and_loners() -> None:
    assert packing_line(3, ["a", "a", "b", "a", "", "c"]) == (
        "round 3: 6 trials; vectorized groups of 3; 3 alone"
    )


def test_tpe_rounds_give_the_same_trials_with_one_or_two_processes(tmp_path: Path) -> None:
    search = {"strategy": "tpe", "n_trials": 12, "batch_size": 4, "sampler_seed": 7}

    def run(jobs: int) -> None:  # long enough that the worker, started a few seconds later, joins
        exp = experiment("tpe_rounds", **search, n_jobs=jobs)
        exp = exp.model_copy(update={"train": exp.train.model_copy(update={"epochs": 40, "batch_size": 16})})
        result = tune(exp, out=tmp_path / str(jobs), write_outputs=False)
        assert result.n_complete == 12 and result.finished

    run(1)
    run(2)
    a, b = trials(tmp_path / "1", "tpe_rounds"), trials(tmp_path / "2", "tpe_rounds")
    assert [t.number for t in a] == [t.number for t in b] == list(range(12))
    for x, y in zip(a, b, strict=True):
        assert x.params == y.params, x.number
    assert [t.user_attrs[ROUND_ATTR] for t in a] == [1] * 4 + [2] * 4 + [3] * 4
    packing = (tmp_path / "2" / "rounds.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(":")[0] for line in packing] == ["round 1", "round 2", "round 3"]
    assert len({t.user_attrs["config_key"] for t in a}) == 12  # no configuration asked twice


def fake_study(tmp_path: Path, name: str, finish_order: str, processes: int) -> list[dict]:
    """Drive a study's rounds by hand: `processes` planners take their shares of each round, and
    finish them in `finish_order` ("first" or "last" process first); the loss is a fixed function
    of the parameters, as training is."""
    exp = experiment(name, strategy="tpe", n_trials=12, batch_size=4, sampler_seed=3)
    knobs = parse_space(exp)
    study = optuna.create_study()
    planners = [rounds_for(study, exp, knobs, 12, None, RunLayout(tmp_path / name)) for _ in range(processes)]
    share_processes(study, processes)
    while len(study.get_trials(states=(TrialState.COMPLETE,))) < 12:
        taken = [planner.ask(study, len(study.get_trials(states=(TrialState.COMPLETE,)))) for planner in planners]
        for items in taken if finish_order == "first" else reversed(taken):
            for trial, params in items or []:
                study.tell(trial, (math.log10(params["train.lr"]) + 2.5) ** 2 + params["model.dropout"])
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def test_rounds_do_not_depend_on_who_asks_or_who_finishes_first(tmp_path: Path) -> None:
    alone = fake_study(tmp_path, "alone", "first", 1)
    assert len(alone) == 12
    assert fake_study(tmp_path, "pair", "first", 2) == alone
    assert fake_study(tmp_path, "pair_reversed", "last", 2) == alone
    assert fake_study(tmp_path, "trio", "last", 3) == alone


def test_round_two_differs_from_a_fresh_random_round(tmp_path: Path) -> None:
    """The round's sampler sees round one's results: round two is not round one again."""
    tune(experiment("tpe_two", strategy="tpe", n_trials=6, batch_size=3, n_jobs=1), out=tmp_path,
         write_outputs=False)
    done = trials(tmp_path, "tpe_two")
    assert all(t.state == TrialState.COMPLETE for t in done)
    first, second = [t.params for t in done[:3]], [t.params for t in done[3:]]
    assert not any(p in first for p in second)


def test_batch_size_one_asks_one_at_a_time(tmp_path: Path) -> None:
    tune(experiment("tpe_one", strategy="tpe", n_trials=3, batch_size=1, n_jobs=1), out=tmp_path,
         write_outputs=False)
    assert all(ROUND_ATTR not in t.user_attrs for t in trials(tmp_path, "tpe_one"))


@pytest.mark.parametrize("strategy", ["gp", "cmaes"])
def test_gp_and_cmaes_ask_in_rounds(tmp_path: Path, strategy: str) -> None:
    if strategy == "cmaes":
        pytest.importorskip("cmaes")
    space = {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True}, "model.dropout": {"low": 0.0, "high": 0.5}}
    exp = Experiment.model_validate({"name": strategy, **BASE, "search": {
        "strategy": strategy, "space": space, "n_trials": 8, "batch_size": 4, "n_jobs": 1}})
    result = tune(exp, out=tmp_path, write_outputs=False)
    assert result.n_complete == 8
    done = trials(tmp_path, strategy)
    assert [t.user_attrs[ROUND_ATTR] for t in done] == [1] * 4 + [2] * 4
    assert len({tuple(sorted(t.params.items())) for t in done}) == 8


def test_a_used_up_space_ends_the_study_instead_of_asking_forever(tmp_path: Path) -> None:
    exp = Experiment.model_validate({"name": "tiny", **BASE, "search": {
        "strategy": "tpe", "space": {"model.hidden_dims": [[8], [16]]}, "n_trials": 5, "batch_size": 2,
        "n_jobs": 1}})
    result = tune(exp, out=tmp_path, write_outputs=False)
    assert (result.n_complete, result.finished) == (2, False)
    assert len(trials(tmp_path, "tiny")) == 2  # nothing asked twice, nothing failed


def test_a_used_up_space_asked_one_at_a_time_stops_and_trains_each_configuration_once(tmp_path: Path) -> None:
    """Two configurations and a budget of 5: TPE keeps proposing the two; the study must not ask forever."""
    exp = Experiment.model_validate({"name": "dup", **BASE, "train": {**BASE["train"], "epochs": 1},
                                     "search": {"strategy": "tpe", "n_trials": 5, "batch_size": 1, "n_jobs": 1,
                                                "space": {"model.hidden_dims": [[8], [16]]}}})
    res = tune(exp, out=tmp_path / "dup")
    found = trials(tmp_path / "dup", "dup")
    trained = [t for t in found if t.user_attrs.get("outcome") == "complete"]
    duplicates = [t for t in found if t.user_attrs.get("outcome") == "duplicate"]
    assert res.n_complete == len(trained) == len({t.user_attrs["config_key"] for t in trained}) == 2
    assert MAX_DRY_ASKS <= len(duplicates) <= MAX_DRY_ASKS + 3  # stopped, after a bounded number of asks
    assert all("already taken by trial" in t.user_attrs.get("reason", "") for t in duplicates)


def test_two_processes_asking_one_at_a_time_propose_different_configurations(tmp_path: Path) -> None:
    """Both processes build the sampler from one sampler_seed: a joining process must not mirror
    `tune`'s proposals (each mirrored one would be failed as a duplicate and asked again)."""
    space = {"train.lr": SPACE["train.lr"], "model.dropout": SPACE["model.dropout"]}
    exp = Experiment.model_validate({"name": "one_by_one", **BASE, "train": {**BASE["train"], "epochs": 20},
                                     "search": {"strategy": "tpe", "n_trials": 8, "batch_size": 1, "n_jobs": 2,
                                                "sampler_seed": 5, "space": space}})
    res = tune(exp, out=tmp_path / "o", write_outputs=False)
    found = trials(tmp_path / "o", "one_by_one")
    assert [t.user_attrs.get("outcome") for t in found] == ["complete"] * 8, \
        [(t.number, t.user_attrs.get("reason")) for t in found]
    assert res.n_complete == 8 and len({t.user_attrs["config_key"] for t in found}) == 8
    assert len({t.user_attrs["pid"] for t in found}) == 2  # both processes asked and trained
