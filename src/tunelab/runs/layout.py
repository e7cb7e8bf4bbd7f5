"""Every path inside a run folder; no other module builds one (the folder is the contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrialLayout:
    """One trial's folder: `trials/<number>-<short name>/`."""

    root: Path

    @property
    def params_json(self) -> Path:
        return self.root / "params.json"

    @property
    def metrics_jsonl(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def metrics_log(self) -> Path:
        return self.root / "metrics.log"

    @property
    def grad_norms_jsonl(self) -> Path:
        return self.root / "grad_norms.jsonl"

    @property
    def result_json(self) -> Path:
        return self.root / "result.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:05d}.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    def seed(self, i: int) -> TrialLayout:
        """Seed repeat `i` of a configuration trained with several seeds: a full trial folder of its own."""
        return TrialLayout(self.root / f"seed-{i}")

    def seeds(self, count: int) -> list[TrialLayout]:
        """One seed: the trial folder itself; k seeds: `seed-<i>/` inside it."""
        return [self] if count <= 1 else [self.seed(i) for i in range(count)]

    def seed_dirs(self) -> list[Path]:
        """The `seed-<i>/` folders on disk, in name order ([] for a one-seed trial)."""
        return sorted(self.root.glob("seed-*"))

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """Epoch checkpoints on disk, newest first."""
        found = []
        for path in self.checkpoints.glob("epoch_*.pt"):
            match = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)


@dataclass(frozen=True)
class RunLayout:
    """A study's folder: `runs/<study>/`."""

    root: Path

    @property
    def experiment_yaml(self) -> Path:
        return self.root / "experiment.yaml"

    @property
    def study_db(self) -> Path:
        return self.root / "study.db"

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def rounds_lock(self) -> Path:
        return self.root / ".rounds.lock"

    @property
    def rounds_log(self) -> Path:
        """One line per round of a batched study: how its trials were packed into groups."""
        return self.root / "rounds.log"

    def trial(self, number: int, short_name: str) -> TrialLayout:
        return TrialLayout(self.trials / f"{number}-{short_name}")

    def trial_dirs(self) -> list[TrialLayout]:
        """Trial folders in trial-number order."""
        if not self.trials.is_dir():
            return []
        found = []
        for path in self.trials.iterdir():
            head = path.name.split("-", 1)[0]
            if path.is_dir() and head.isdigit():
                found.append((int(head), path))
        return [TrialLayout(p) for _, p in sorted(found)]

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def optimization_history(self) -> Path:
        return self.root / "optimization_history.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def decisions_md(self) -> Path:
        return self.root / "decisions.md"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def final_model(self) -> Path:
        return self.final / "model.pt"

    @property
    def final_params(self) -> Path:
        return self.final / "params.json"

    @property
    def test_metrics(self) -> Path:
        return self.final / "test_metrics.json"

    def final_train(self, seed: int, seeds: int) -> TrialLayout:
        """The final retrain's own folder: `final/train/`, or `final/train-seed-<i>/` with several seeds."""
        return TrialLayout(self.final / ("train" if seeds == 1 else f"train-seed-{seed}"))

    @property
    def lr_sweep_txt(self) -> Path:
        return self.root / "lr_sweep.txt"

    @property
    def stages_json(self) -> Path:
        return self.root / "stages.json"

    def stage(self, index: int, name: str) -> RunLayout:
        """A staged study's stage `index`: an ordinary run folder under `stages/`."""
        return RunLayout(self.root / "stages" / f"{index}-{name}")

    @property
    def stages_dir(self) -> Path:
        return self.root / "stages"
