"""fit_group with `member_data`: cross-validation folds train as members of one group, each on its
own rows, and each member equals its fold trained alone with `fit`."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tunelab.config.schema import Experiment
from tunelab.data import load_dataset
from tunelab.data.folds import fold_experiments
from tunelab.train.loop import fit
from tunelab.train.trial import model_for
from tunelab.train.vectorized import fit_group

RTOL, ATOL = 1e-5, 1e-6


def _folds(raw: dict[str, Any]) -> list[tuple[Experiment, Any]]:
    exp = Experiment.model_validate(raw)
    return [(f, load_dataset(f.data, f.task)) for f in fold_experiments(exp)]


def _alone(exp: Experiment, data: Any) -> tuple[torch.nn.Module, Any]:
    model = model_for(exp, data)
    return model, fit(model, data, exp.train, loss_name=exp.train.loss, metrics=exp.train.metrics or [])


def _together(members: list[tuple[Experiment, Any]]) -> list[tuple[torch.nn.Module, Any]]:
    models, states = [], []
    for exp, data in members:
        models.append(model_for(exp, data))
        states.append(torch.get_rng_state())
    exp0 = members[0][0]
    results = fit_group(models, members[0][1], [e.train for e, _ in members], loss_name=exp0.train.loss,
                        metrics=exp0.train.metrics or [], layouts=[None] * len(models),
                        identities=[{} for _ in models], rng_states=states, member_data=[d for _, d in members])
    return list(zip(models, results, strict=True))


def _assert_same(alone: tuple[torch.nn.Module, Any], member: tuple[torch.nn.Module, Any]) -> None:
    (m1, r1), (m2, r2) = alone, member
    assert (r1.state, r1.epochs_run, r1.best_epoch) == (r2.state, r2.epochs_run, r2.best_epoch)
    for key, value in r1.last_record.items():
        if isinstance(value, float) and key != "epoch_time_s":
            assert r2.last_record[key] == pytest.approx(value, rel=RTOL, abs=ATOL), key
    for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
        torch.testing.assert_close(p2, p1, rtol=RTOL, atol=ATOL, msg=name)


@pytest.mark.parametrize("raw", [
    {"data": {"name": "wine", "cv_folds": 5}, "model": {"family": "mlp", "hidden_dims": [16], "dropout": 0.2},
     "train": {"epochs": 4, "batch_size": 16, "lr": 0.01, "loss": "cross_entropy", "metrics": ["accuracy"],
               "eval_train": True,
               "device": "cpu"}},
    # regression: each fold has its own target scaler
    {"data": {"name": "diabetes", "cv_folds": 4}, "model": {"family": "mlp", "hidden_dims": [8]},
     "train": {"epochs": 3, "batch_size": "full", "lr": 0.01, "loss": "mse", "metrics": ["r2", "mae"],
               "device": "cpu"}},
])
def test_folds_of_one_size_train_as_members_and_equal_each_fold_alone(raw: dict[str, Any]) -> None:
    folds = _folds(raw)
    by_size: dict[tuple[int, int], list[tuple[Experiment, Any]]] = {}
    for exp, data in folds:
        by_size.setdefault((len(data.train), len(data.val)), []).append((exp, data))
    assert any(len(group) > 1 for group in by_size.values())
    for group in by_size.values():
        together = _together(group)
        for (exp, data), member in zip(group, together, strict=True):
            _assert_same(_alone(exp, data), member)


def test_members_with_data_of_different_sizes_are_refused() -> None:
    folds = _folds({"data": {"name": "wine", "cv_folds": 5}, "model": {"family": "mlp", "hidden_dims": [4]},
                    "train": {"epochs": 1, "device": "cpu"}})
    sizes = {(len(d.train), len(d.val)) for _, d in folds}
    assert len(sizes) == 2  # 142 non-test rows in 5 parts: 29, 29, 28, 28, 28
    first, last = folds[0], folds[-1]
    with pytest.raises(ValueError, match=r"cannot vectorize: member 1: 114 train / 28 val rows, member 0 has 113 / 29"):
        _together([first, last])
