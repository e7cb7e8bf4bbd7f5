"""A configuration's own cost (train/cost.py): parameters, memory, time alone and latency per shape."""

from __future__ import annotations

import itertools

import pytest

from fixtures.cost_models import cost_row, diabetes_mlp
from tunelab.train import cost


def test_small_and_wide_models_differ_in_parameters_and_memory() -> None:
    small = cost_row(*diabetes_mlp([4]))
    wide = cost_row(*diabetes_mlp([512, 512]))
    assert small["n_params"] == 10 * 4 + 4 + 4 * 1 + 1
    assert wide["n_params"] == 10 * 512 + 512 + 512 * 512 + 512 + 512 + 1
    assert wide["config_mem_mb"] > 10 * small["config_mem_mb"]
    # on CPU: weights + gradients + Adam's two moments (+ step counters) + activations, labelled as estimated
    assert wide["config_mem_mb"] >= 4 * wide["n_params"] * 4 / 2**20
    assert small["config_mem_kind"] == wide["config_mem_kind"] == "estimated"
    for row in (small, wide):
        assert row["latency_ms_b1"] > 0 and row["latency_ms_b256"] > 0


def test_time_alone_is_measured_when_given_else_estimated_from_epochs() -> None:
    exp, data, model = diabetes_mlp([64])
    measured = cost_row(exp, data, model, epochs_run=2, measured=1.25)
    assert measured["train_time_alone_s"] == 1.25 and measured["train_time_kind"] == "measured"
    two = cost_row(exp, data, model, epochs_run=2)
    four = cost_row(exp, data, model, epochs_run=4)
    assert two["train_time_kind"] == four["train_time_kind"] == "estimated"
    assert two["train_time_alone_s"] > 0
    # one calibration per shape per process: the estimate is exactly proportional to the epochs run
    assert four["train_time_alone_s"] == pytest.approx(2 * two["train_time_alone_s"], abs=2e-4)


def test_calibration_runs_once_per_shape() -> None:
    exp, data, model = diabetes_mlp([16])
    first = cost.calibrate(model, data, exp.train, exp.train.loss)
    assert first["steps_per_epoch"] == -(-len(data.train) // 32)  # batches of 32, the last one short
    _, _, other_seed = diabetes_mlp([16])
    assert cost.calibrate(other_seed, data, exp.train, exp.train.loss) is first
    _, _, wider = diabetes_mlp([32])
    assert cost.calibrate(wider, data, exp.train, exp.train.loss) is not first


def test_trial_cost_sums_seeds_and_writes_cost_json(tmp_path) -> None:
    from tunelab.runs.layout import TrialLayout
    from tunelab.train.loop import FitResult
    from tunelab.train.trial_cost import trial_cost

    exp, data, model = diabetes_mlp([8])
    _, _, other = diabetes_mlp([8])
    results = [FitResult(state="complete", reason="", epochs_run=2, best_epoch=2, best_value=1.0, monitor="val_loss",
                         train_time_s=t) for t in (1.0, 2.5)]
    layout = TrialLayout(tmp_path / "0-x")
    found = trial_cost([model, other], data, exp, results, layout, alone=True)
    assert found["train_time_alone_s"] == 3.5 and found["train_time_kind"] == "measured"
    assert found["n_params"] == 10 * 8 + 8 + 8 + 1 and found["latency_ms_b1"] > 0
    assert layout.cost_json.is_file()


def test_latency_rounds_are_sized_from_the_time_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each timed round after the first is sized from the per-call time just measured (at most 16x
    the last), so the round that decides lasts about `LATENCY_MIN_S` instead of up to 4x it."""
    _exp, data, model = diabetes_mlp([8])
    rounds: list[int] = []
    per_call = 1e-4  # seconds: what the fake clock says every call takes

    def timed(_fn, _device, repeats: int) -> float:
        rounds.append(repeats)
        return per_call

    monkeypatch.setattr(cost, "_timed", timed)
    ms = cost.latency_ms(model, data, cost.resolve_device("cpu"), 1)
    assert ms == pytest.approx(per_call * 1000)
    assert rounds[0] == 1 and all(b >= 2 * a and b <= 16 * a for a, b in itertools.pairwise(rounds))
    assert rounds[-1] * per_call >= cost.LATENCY_MIN_S  # the last round lasts the minimum ...
    assert rounds[-1] * per_call <= 1.25 * cost.LATENCY_MIN_S  # ... and not much more
    assert all(r * per_call < cost.LATENCY_MIN_S for r in rounds[:-1])
    assert sum(rounds) < 1 + 4 + 16 + 64 + 256 + 1024  # growing 4x blindly: 1365 calls, the last 1024
    rounds.clear()
    per_call = 1e-9  # a call too fast to fill the minimum: capped
    cost.latency_ms(model, data, cost.resolve_device("cpu"), 1)
    assert rounds[-1] == cost.LATENCY_MAX_REPEATS
