"""decisions.md: the study's decision card (seed 004's six fields), one card per stage, then the findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.diagnose import diagnose_run
from tunelab.diagnose.decisions import build_card, write_decisions
from tunelab.runs.view import RunView

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CARD_FIELDS = ("Question", "Fixed", "Changed", "Selection metric", "Best setting", "Next experiment")


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory) -> Path:
    """The real seed 004 sweep (5 lrs × 40 full-batch epochs on toy_2d, about a second)."""
    out = tmp_path_factory.mktemp("diag") / "s4"
    result = CliRunner().invoke(app, ["tune", str(EXAMPLES / "seed004_lr_sweep.yaml"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_seed_004_sweep_best_lr_1_is_not_on_the_edge(lr_sweep):
    findings = diagnose_run(lr_sweep)
    assert not [f for f in findings if f.rule == "best_on_edge"]
    by_rule = {f.rule: f for f in findings}
    # lr=0.001 barely moves; lr=10 spikes (25.96 at epoch 3) but recovers, so it is a warning, not an error
    assert by_rule["train_loss_flat"].trials == [0]
    assert by_rule["loss_exploding"].trials == [4] and by_rule["loss_exploding"].severity == "warning"
    assert not [f for f in findings if f.severity == "error"]


def test_seed_004_sweep_card_has_the_six_fields(lr_sweep):
    text = write_decisions(lr_sweep).read_text(encoding="utf-8")
    assert text.startswith("# Decisions: seed004_lr_sweep")
    assert "### lr sweep" in text
    for name in CARD_FIELDS:
        assert f"| {name} | " in text
    assert "| Changed | lr in [0.001, 0.01, 0.1, 1, 10] |" in text
    assert "| Best setting | lr=1 (val_loss=0.0717) |" in text
    assert "| Next experiment | keep lr=1 fixed and compare batch_size values |" in text
    assert "seed=123" in text and "optimizer=sgd" in text and "epochs=40" in text and "batch_size=full" in text
    assert "## Findings" in text and "| warning | loss_exploding | #4 |" in text


def test_edge_winner_card_says_widen(build):
    b = build().experiment(strategy="lr_sweep", space={"train.lr": [0.001, 0.01, 0.1]})
    for i, lr in enumerate([0.001, 0.01, 0.1]):
        b.trial(i, params={"train.lr": lr}, value=0.5 - 0.1 * i)
    card = build_card(RunView(b.history().root))
    assert card is not None
    assert card.next_experiment == "widen the range of lr: the best value sits on its edge"


def test_card_does_not_ask_to_widen_a_knob_past_its_natural_floor(build):
    """A best dropout of 0.014 in 0..0.5 sits at the range's floor, and nothing lies below 0: the
    best_on_edge finding stays silent about it, so the card must not tell the user to widen it."""
    space = {"model.dropout": {"low": 0.0, "high": 0.5}, "train.lr": [0.001, 0.01, 0.1]}
    b = build().experiment(strategy="random", space=space)
    points = [(0.014, 0.1), (0.3, 0.01), (0.2, 0.001)]
    for i, (dropout, lr) in enumerate(points):
        b.trial(i, params={"model.dropout": dropout, "train.lr": lr}, value=0.2 + 0.1 * i)
    run = RunView(b.history().root)
    edge_findings = [f for f in diagnose_run(run.root) if f.rule == "best_on_edge"]
    assert [list(f.space) for f in edge_findings] == [["train.lr"]]
    card = build_card(run)
    assert card is not None
    assert card.next_experiment == "widen the range of lr: the best value sits on its edge"


def test_ablation_card_counts_a_one_value_list_as_searched_against_the_base(build):
    """`model.dropout: [0.3]` in an ablation runs dropout 0.3 against the base's 0: the card must
    list it as changed, not as fixed at 0.3 (most trials, the winner among them, ran 0)."""
    b = build().experiment(strategy="ablation", space={"model.dropout": [0.3], "train.lr": [0.01, 1.0]})
    points = [(0.0, 0.1, 0.3), (0.3, 0.1, 0.35), (0.0, 0.01, 0.5), (0.0, 1.0, 0.6)]
    for i, (dropout, lr, value) in enumerate(points):
        b.trial(i, params={"model.dropout": dropout, "train.lr": lr}, value=value)
    card = build_card(RunView(b.history().root))
    assert card is not None
    assert "dropout" not in card.fixed
    assert card.changed == "dropout in [0.3, 0]; lr in [0.01, 1, 0.1]"
    assert card.best_setting.startswith("dropout=0, lr=0.1 ")


def test_val_test_error_replaces_the_next_experiment(build):
    b = build().experiment(space={"train.lr": [0.01, 0.001, 0.0001]})
    b.trial(0, params={"train.lr": 0.001}, value=0.26, train=[0.5, 0.4, 0.3], val=[0.4, 0.3, 0.26],
            extra={"val_r2": [0.1, 0.3, 0.47]})
    b.history().final(trial_number=0, test_r2=-10.4, test_loss=0.34)
    text = write_decisions(b.root).read_text(encoding="utf-8")
    assert "| Next experiment | the split is too small or shifted" in text
    assert "| error | val_test_disagree | study (#0) |" in text


def test_train_folder_gets_findings_only(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[0.776, 25.96, 0.3, 0.28], val=[0.6, 20.0, 0.3, 0.29])
    text = write_decisions(b.root).read_text(encoding="utf-8")
    assert "Decision card" not in text
    assert "| warning | loss_exploding | #0 |" in text


def test_clean_folder_says_no_findings(build):
    b = build().experiment(strategy="none")
    b.trial(0, train=[1.0, 0.6, 0.4, 0.3], val=[1.0, 0.65, 0.45, 0.35])
    assert "No findings" in write_decisions(b.root).read_text(encoding="utf-8")


def test_user_text_is_escaped(build):
    b = build().experiment(name="a|b<script>", space={"train.lr": [0.1, 1.0]})
    b.trial(0, params={"train.lr": 1.0}, value=0.2)
    text = write_decisions(b.history().root).read_text(encoding="utf-8")
    assert "# Decisions: a\\|b&lt;script&gt;" in text
    assert "<script>" not in text


def test_staged_folder_gets_one_card_per_stage(build):
    root = build("staged").experiment(strategy="staged").root
    for i, (name, space, best) in enumerate(
        [("lr", {"train.lr": [0.01, 0.1, 1.0]}, 0.1), ("batch_size", {"train.batch_size": [16, 32, 64]}, 32)],
        start=1,
    ):
        stage = build(f"staged/stages/{i}-{name}").experiment(space=space, name=f"synthetic.stage{i}-{name}")
        key = next(iter(space))
        for j, v in enumerate(space[key]):
            stage.trial(j, params={key: v}, value=0.3 if v == best else 0.4)
        stage.history()
    (root / "stages.json").write_text(json.dumps({"stages": [
        {"stage": 1, "name": "lr", "question": "which lr learns fastest?", "run_dir": "stages/1-lr"},
        {"stage": 2, "name": "batch_size", "question": "which batch size?", "run_dir": "stages/2-batch_size"},
        {"stage": 3, "name": "epochs", "question": "how long?", "run_dir": "stages/3-epochs"},
    ]}), encoding="utf-8")
    text = write_decisions(root).read_text(encoding="utf-8")
    assert "## Decision cards" in text
    assert "### Stage 1: lr" in text and "| Question | which lr learns fastest? |" in text
    assert "| Best setting | lr=0.1 (val_loss=0.3000) |" in text
    assert "### Stage 2: batch_size" in text and "| Best setting | batch_size=32 (val_loss=0.3000) |" in text
    assert "### Stage 3: epochs" in text and "No run folder at" in text
    card2 = text.split("### Stage 2: batch_size", 1)[1]
    fixed2 = next(line for line in card2.splitlines() if line.startswith("| Fixed |"))
    assert "lr=0.1" in fixed2  # stage 1's winner is what stage 2 held fixed
    card1 = text.split("### Stage 1: lr", 1)[1].split("### Stage 2", 1)[0]
    assert "| Next experiment | Stage 2: batch_size: which batch size? (the next stage" in card1


def test_unwritable_folder_is_a_one_line_error(build, monkeypatch):
    from tunelab.diagnose import evidence
    from tunelab.errors import RunFolderError

    b = build().experiment(strategy="none")

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(evidence, "write_text_atomic", refuse)
    with pytest.raises(RunFolderError, match=r"cannot write .*decisions\.md: Permission denied"):
        write_decisions(b.root)


def test_lr_sweep_text_shows_mean_and_std_over_seeds(tmp_path):
    import yaml

    from tunelab.search.lr_sweep import format_sweep, sweep_rows

    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(
        {"name": "s", "train": {"metrics": ["accuracy"]}, "search": {"strategy": "lr_sweep"}}), encoding="utf-8")
    for number, lr, losses in ((0, 0.01, (0.5, 0.7)), (1, 0.1, (0.3, 0.5))):
        for seed, loss in enumerate(losses):
            folder = tmp_path / "trials" / f"{number}-lr{lr}" / f"seed-{seed}"
            folder.mkdir(parents=True)
            records = [{"epoch": 1, "train_loss": 1.0, "val_loss": loss + 0.1, "val_accuracy": 0.5, "lr": lr},
                       {"epoch": 2, "train_loss": 0.5, "val_loss": loss, "val_accuracy": 0.8, "lr": lr}]
            (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            (folder / "params.json").write_text(json.dumps({"params": {"train.lr": lr}}), encoding="utf-8")
    rows, metric = sweep_rows(tmp_path)
    text = format_sweep(rows, metric)
    assert "lr=0.01 train_loss=0.500 val_loss=0.600±0.141 val_acc=0.800±0.000" in text
    assert "lr=0.1 train_loss=0.500 val_loss=0.400±0.141 val_acc=0.800±0.000 best_val_loss=0.400±0.141 (2 seeds)" \
        in text


def test_card_states_the_real_split_of_a_data_set_with_its_own(build):
    b = build().experiment(space={"train.lr": [0.01, 0.1]})  # toy_2d: native 180 train / 60 val, no test
    b.trial(0, params={"train.lr": 0.01}, value=0.3)
    b.history()
    (b.root / "split.json").write_text('{"train": 180, "val": 60, "test": 0}', encoding="utf-8")  # as tune writes it
    card = build_card(RunView(b.root))
    assert "toy_2d (180 train / 60 val rows, no test split; split_seed 0)" in card.fixed
    assert "test 0.2" not in card.fixed


def test_lr_sweep_names_the_studys_winner_when_its_objective_is_not_the_loss(build):
    """An lr sweep selected on val_accuracy: the study (summary, final model) picks lr 0.1, whose
    accuracy is best, while lr 0.01 has the lower loss; lr_sweep.txt must name the same winner."""
    from tunelab.search.lr_sweep import format_sweep, sweep_rows

    b = build().experiment(strategy="lr_sweep", space={"train.lr": [0.01, 0.1]}, metric="val_accuracy")
    b.trial(0, params={"train.lr": 0.01}, value=0.9, train=[0.5, 0.3], val=[0.35, 0.3],
            extra={"val_accuracy": [0.85, 0.9]})
    b.trial(1, params={"train.lr": 0.1}, value=0.95, train=[0.5, 0.4], val=[0.5, 0.4],
            extra={"val_accuracy": [0.9, 0.95]})
    root = b.history(direction="maximize", metric="val_accuracy").root
    assert json.loads((root / "optimization_history.json").read_text())["best_params"] == {"train.lr": 0.1}

    text = format_sweep(*sweep_rows(root))

    assert "best_lr: 0.1\n" in text
