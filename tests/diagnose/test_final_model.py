"""The final model's test metric against the chosen trial's validation estimate (seed 000)."""

from __future__ import annotations

from tunelab.diagnose.final_model import val_test_disagree
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.runs.view import RunView


def chosen(build, val_r2: float, val_loss: float, **test) -> RunView:
    b = build().experiment(space={"train.lr": [0.01, 0.001, 0.0001]}, metric="val_loss")
    n = 15
    b.trial(
        20,
        params={"train.lr": 0.0001},
        value=val_loss,
        train=[0.5 - 0.01 * i for i in range(n)],
        val=[0.5 - 0.01 * i for i in range(n - 1)] + [val_loss],
        extra={"val_r2": [0.0] * (n - 1) + [val_r2]},
    )
    b.history().final(trial_number=20, **test)
    return RunView(b.root)


def test_seed_000_val_r2_047_vs_test_r2_minus_10_is_an_error(build):
    run = chosen(build, val_r2=0.4720, val_loss=0.2622, test_r2=-10.3754, test_loss=0.3395)
    [f] = val_test_disagree(run, TH)
    assert f.severity == "error" and f.scope == "study" and f.trials == [20]
    assert f.evidence == "val_r2 0.472 vs test_r2 -10.38 (trial #20 at epoch 15 vs the final model on test)"
    assert "never on test" in f.next_experiment


def test_close_val_and_test_agree(build):
    # seed 000's base model: val R² 0.6443, test R² 0.6071; val loss 0.2007, test loss 0.2135
    assert val_test_disagree(chosen(build, val_r2=0.6443, val_loss=0.2007, test_r2=0.6071, test_loss=0.2135), TH) == []


def test_r2_sign_flip_is_a_disagreement_even_when_close(build):
    [f] = val_test_disagree(chosen(build, val_r2=0.05, val_loss=0.3, test_r2=-0.05, test_loss=0.3), TH)
    assert "val_r2 0.05 vs test_r2 -0.05" in f.evidence


def test_test_loss_far_above_validation_is_a_disagreement(build):
    # seed 000's lr0.001_hdim128_do0.0: val loss 0.2162, test loss 0.6109
    [f] = val_test_disagree(chosen(build, val_r2=0.6, val_loss=0.2162, test_r2=0.55, test_loss=0.6109), TH)
    assert f.evidence.startswith("val_loss 0.2162 vs test_loss 0.6109")


def test_accuracy_gap_over_a_tenth_disagrees(build):
    b = build().experiment(space={"train.lr": [0.1, 1.0, 10.0]}, metric="val_accuracy")
    b.trial(0, params={"train.lr": 1.0}, value=0.98, train=[0.5, 0.3, 0.1], val=[0.4, 0.2, 0.1],
            extra={"val_accuracy": [0.8, 0.9, 0.98]})
    b.history(direction="maximize", metric="val_accuracy").final(trial_number=0, test_accuracy=0.8, test_loss=0.12)
    [f] = val_test_disagree(RunView(b.root), TH)
    assert f.evidence.startswith("val_accuracy 0.98 vs test_accuracy 0.8")


def test_no_final_model_no_finding(build):
    b = build().experiment(space={"train.lr": [0.1, 1.0]})
    b.trial(0, params={"train.lr": 1.0}, value=0.1, train=[0.5, 0.1], val=[0.4, 0.1])
    assert val_test_disagree(RunView(b.history().root), TH) == []
