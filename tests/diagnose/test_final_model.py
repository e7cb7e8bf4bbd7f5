"""The final model's test metric against the chosen trial's validation estimate (seed 000), weighed
against the noise the split sizes explain."""

from __future__ import annotations

import json

import pytest

from tunelab.diagnose.final_model import val_test_disagree
from tunelab.diagnose.split_noise import Gap
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS as TH
from tunelab.runs.view import RunView

SEED_000_SPLIT = (12384, 4128, 4128)  # California housing, 60/20/20 (examples/seed000_grid.yaml)


def chosen(build, val_r2: float, val_loss: float, split: tuple[int, int, int] | None = None, name: str = "run",
           **test) -> RunView:
    b = build(name).experiment(space={"train.lr": [0.01, 0.001, 0.0001]}, metric="val_loss")
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
    if split is not None:
        (b.root / "split.json").write_text(json.dumps(dict(zip(("train", "val", "test"), split))), encoding="utf-8")
    return RunView(b.root)


def classifier(build, val_acc: float, split: tuple[int, int, int], **final) -> RunView:
    """A one-trial classification study whose chosen epoch reached `val_acc`; `final` is test_metrics.json."""
    b = build().experiment(space={"train.lr": [0.1, 1.0, 10.0]}, metric="val_accuracy")
    b.trial(1, params={"train.lr": 1.0}, value=val_acc, train=[2.2, 2.1], val=[1.85, 1.9],
            extra={"val_accuracy": [val_acc, val_acc - 0.02]})
    b.history(direction="maximize", metric="val_accuracy").final(trial_number=1, **final)
    (b.root / "split.json").write_text(json.dumps(dict(zip(("train", "val", "test"), split))), encoding="utf-8")
    return RunView(b.root)


def test_seed_000_val_r2_047_vs_test_r2_minus_10_is_an_error_far_beyond_noise(build):
    run = chosen(build, val_r2=0.4720, val_loss=0.2622, test_r2=-10.3754, test_loss=0.3395, split=SEED_000_SPLIT)
    [f] = val_test_disagree(run, TH)
    assert f.severity == "error" and f.scope == "study" and f.trials == [20]
    # (1 - R²)·√(2/n): 0.528·0.0220 = 0.0116 on val, 11.38·0.0220 = 0.250 on test; gap 10.85 = 43.3 of them
    assert f.evidence == (
        "val_r2 0.472 vs test_r2 -10.38: 43.3 standard errors of chance (±0.01162 on 4128 val rows, "
        "±0.2504 on 4128 test rows; (1-R²)·√(2/n)) (trial #20 at epoch 15 vs the final model on test)"
    )
    assert "never on test" in f.next_experiment


def test_without_split_sizes_the_size_of_the_gap_alone_decides(build):
    run = chosen(build, val_r2=0.4720, val_loss=0.2622, test_r2=-10.3754, test_loss=0.3395)
    [f] = val_test_disagree(run, TH)
    assert f.severity == "error"
    assert f.evidence == ("val_r2 0.472 vs test_r2 -10.38 (trial #20 at epoch 15 vs the final model on test; "
                          "split sizes unknown: no split.json)")


def test_close_val_and_test_agree(build):
    # seed 000's base model: val R² 0.6443, test R² 0.6071; val loss 0.2007, test loss 0.2135
    run = chosen(build, val_r2=0.6443, val_loss=0.2007, test_r2=0.6071, test_loss=0.2135, split=SEED_000_SPLIT)
    assert val_test_disagree(run, TH) == []


def test_a_large_r2_gap_on_88_rows_is_chance(build):
    # the diabetes starter (tunelab init -t regression), full run: 0.579 vs 0.324 is 2.1 standard errors on 88 rows
    run = chosen(build, val_r2=0.579, val_loss=0.2, test_r2=0.3243, test_loss=0.2524, split=(266, 88, 88))
    assert val_test_disagree(run, TH) == []


def test_r2_sign_flip_counts_only_beyond_noise(build):
    assert val_test_disagree(chosen(build, val_r2=0.05, val_loss=0.3, test_r2=-0.05, test_loss=0.3,
                                    split=(600, 200, 200)), TH) == []
    [f] = val_test_disagree(chosen(build, val_r2=0.05, val_loss=0.3, test_r2=-0.05, test_loss=0.3, name="b"), TH)
    assert "val_r2 0.05 vs test_r2 -0.05" in f.evidence


def test_test_loss_far_above_validation_is_a_disagreement(build):
    # seed 000's lr0.001_hdim128_do0.0: val loss 0.2162, test loss 0.6109 (log ratio 1.04, se √(2/4128·2) = 0.031)
    run = chosen(build, val_r2=0.6, val_loss=0.2162, test_r2=0.55, test_loss=0.6109, split=SEED_000_SPLIT)
    [f] = val_test_disagree(run, TH)
    assert f.severity == "error"
    assert f.evidence.startswith("val_loss 0.2162 vs test_loss 0.6109: 33.4 standard errors of chance")


def test_quick_run_gap_after_one_epoch_is_a_warning_naming_the_retrain(build):
    # `tunelab init x.yaml && tunelab tune x.yaml --quick`: 5.1 standard errors on 359 rows, but the
    # final model trained 1 epoch on train+val, so it is not the model that scored 0.805
    run = classifier(build, 0.805, (1079, 359, 359), epochs=1, rows_trained=1438, rows_tested=359,
                     test_accuracy=0.6379, test_loss=1.547)
    [f] = val_test_disagree(run, TH)
    assert f.severity == "warning"
    assert f.evidence.startswith(
        "val_accuracy 0.805 vs test_accuracy 0.6379: 5.1 standard errors of chance (±0.02091 on 359 val rows, "
        "±0.02537 on 359 test rows; binomial)")
    assert "the final model trained only 1 epoch(s) on 1438 rows" in f.evidence
    assert f.next_experiment.startswith("train longer before judging the split")


@pytest.mark.parametrize(("test_acc", "severity"), [(0.6379, "error"), (0.69, "warning"), (0.73, None)])
def test_accuracy_gap_severity_follows_the_standard_errors(build, test_acc, severity):
    # 359 rows a split, a settled model (10 epochs): 5.1 SE is an error, 3.5 a warning, 2.3 nothing
    run = classifier(build, 0.805, (1079, 359, 359), epochs=10, rows_tested=359, test_accuracy=test_acc)
    found = val_test_disagree(run, TH)
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_the_final_models_seed_spread_is_part_of_the_noise(build):
    run = classifier(build, 0.805, (1079, 359, 359), epochs=10, rows_tested=359, test_accuracy=0.6379,
                     test_accuracy_std=0.04)
    [f] = val_test_disagree(run, TH)  # √(0.0329² + 0.04²) = 0.0518: 3.2 standard errors
    assert f.severity == "warning" and "±0.04 over the final model's seeds" in f.evidence


def test_perfect_validation_score_still_has_a_standard_error():
    gap = Gap("accuracy", 1.0, 0.95, 36, 36)
    assert gap.se_of(1.0, 36) == pytest.approx((0.5 / 36 * (1 - 0.5 / 36) / 36) ** 0.5)
    assert 1.0 < gap.z < 2.0


def test_accuracy_gap_over_a_tenth_disagrees_without_split_sizes(build):
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
