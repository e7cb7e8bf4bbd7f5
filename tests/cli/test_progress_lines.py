"""`tunelab tune` into a file: one whole line per finished trial (best with metric and direction,
trials in flight, an ETA once a few finished) and one per phase after the trials; no bar redraws."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tunelab.app.progress import best_text, eta_seconds, format_duration

SRC = Path(__file__).resolve().parents[2] / "src"


def _experiment(tmp_path: Path, space: dict | None = None) -> Path:
    raw = {
        "name": "progress_lines",
        "data": {"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": 2, "batch_size": 128, "lr": 0.01, "loss": "cross_entropy", "metrics": ["accuracy"]},
        "search": {"strategy": "grid", "space": space or {"train.lr": [0.01, 0.003], "model.hidden_dims": [[16], [32]]},
                   "objective": {"metric": "val_accuracy"}, "n_jobs": 1},
        "final": {"enabled": True},
    }
    path = tmp_path / "progress_lines.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_tune_into_a_file_writes_one_line_per_trial_and_per_phase(tmp_path: Path) -> None:
    log = tmp_path / "tune.log"
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "40"}
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "tunelab", "tune", str(_experiment(tmp_path)), "--out",
                               str(tmp_path / "run")], stdout=out, stderr=subprocess.PIPE, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text(encoding="utf-8")
    assert "\r" not in text and "\x1b" not in text and "━" not in text  # no bar redraws in a file
    lines = text.splitlines()
    trials = [ln for ln in lines if ln.startswith("trial ") and " done · " in ln]
    assert [int(ln.split()[1]) for ln in trials] == [0, 1, 2, 3]
    pattern = r"trial \d complete val_accuracy=[\d.]+ · (\d)/4 done · best val_accuracy \(max\) [\d.]+ · (\d) in flight"
    parsed = [re.match(pattern, ln) for ln in trials]
    assert all(parsed), trials
    assert [int(m.group(1)) for m in parsed] == [1, 2, 3, 4]
    # the four same-shape pairs train as vectorized groups: a group's second member is in flight with the first
    assert int(parsed[0].group(2)) >= 1 and int(parsed[-1].group(2)) == 0
    assert "ETA" not in trials[0] and "ETA" not in trials[1] and "ETA" in trials[2] and "ETA" not in trials[3]
    for phase in ("final retrain and test", "diagnosis and report"):
        assert any(re.fullmatch(rf"{phase}: [\d.]+s", ln) for ln in lines), (phase, lines)
    assert max(len(ln) for ln in lines) > 40  # COLUMNS does not wrap a file


def test_quiet_and_json_print_no_progress(tmp_path: Path, cli) -> None:
    one_point = _experiment(tmp_path, space={"train.lr": [0.01]})  # a finished trial is all it takes to print one
    result = cli("tune", one_point, "--out", tmp_path / "run", "--json", "--no-final")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.lstrip().startswith("{") and "in flight" not in result.stdout


def test_status_parts_name_metric_direction_and_eta() -> None:
    assert best_text("val_loss", "minimize", 0.41234) == "best val_loss (min) 0.4123"
    assert best_text("val_r2", "maximize", None) == "best val_r2 (max) -"
    assert eta_seconds(10, 2, 2, 20.0, None) is None  # too few finished
    assert eta_seconds(10, 4, 4, 20.0, None) == (30.0, "budget")  # 6 left at 5 s each
    assert eta_seconds(10, 4, 4, 20.0, 12.0) == (12.0, "timeout")
    assert eta_seconds(None, 4, 4, 20.0, 50.0) == (50.0, "timeout")
    assert eta_seconds(4, 4, 4, 20.0, None) is None
    assert [format_duration(s) for s in (4.24, 42, 185, 7620)] == ["4.2s", "42s", "3m05s", "2h07m"]


def test_in_flight_counts_started_groups_and_other_processes_trials() -> None:
    import io

    from rich.console import Console

    from tunelab.app.progress import StudyProgress
    from tunelab.search.results import StudyCounts
    from tunelab.search.trial_run import TrialOutcome

    out = io.StringIO()
    view = StudyProgress(enabled=True, console=Console(file=out, width=100_000, soft_wrap=True), live=False)
    obs = view.observer
    running = {0, 1, 2, 7, 9}  # 0-2 asked here; 7 and 9 trained by other processes of the study
    obs.study_start(10, 0)
    obs.study_info("val_r2", "maximize", None, lambda: StudyCounts(done=1, running=frozenset(running)))
    obs.round_start([0, 1, 2])
    obs.trial_start(0, "")
    obs.trial_start(1, "")  # a group of two starts; trial 2 waits for its turn
    running.discard(0)
    obs.trial_end(0, TrialOutcome(state="complete", value=0.5), 0.5)
    assert out.getvalue() == "trial 0 complete val_r2=0.5 · 1/10 done · best val_r2 (max) 0.5 · 3 in flight\n"


def test_a_trial_process_keeps_one_trials_bar_and_one_epochs_bar() -> None:
    import io

    from rich.console import Console

    from tunelab.app.progress import StudyProgress
    from tunelab.train.hooks import FitContext

    view = StudyProgress(enabled=True, console=Console(file=io.StringIO(), force_terminal=True), live=True)
    (hook,) = view.observer.epoch_hooks()
    with view:
        view.observer.study_start(3, 0)
        view.observer.study_start(3, 0)  # a staged search's next stage
        for _ in range(3):  # three trials, one after the other
            hook.on_train_start(FitContext(model=None, epochs=4))  # type: ignore[arg-type]
            hook.on_epoch_end(FitContext(model=None, epochs=4), {"epoch": 4, "val_loss": 0.5})  # type: ignore[arg-type]
        descriptions = [task.description for task in view._progress.tasks]  # type: ignore[union-attr]
    assert descriptions == ["trials", "epochs"]
